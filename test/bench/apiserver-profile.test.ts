import test from 'ava';
import { apiserverProfileSeconds } from '../../bench/apiserver-profile.js';

test('APQN_BENCH_APISERVER_PROFILE: unset or empty is off; whole seconds 1..300; anything else is refused with the variable named', (t) => {
  t.is(apiserverProfileSeconds({}), undefined);
  t.is(apiserverProfileSeconds({ APQN_BENCH_APISERVER_PROFILE: '' }), undefined);
  t.is(apiserverProfileSeconds({ APQN_BENCH_APISERVER_PROFILE: '10' }), 10);
  for (const bad of ['0', '301', '2.5', 'ten', '-1']) {
    t.throws(() => apiserverProfileSeconds({ APQN_BENCH_APISERVER_PROFILE: bad }), { message: /APQN_BENCH_APISERVER_PROFILE/ }, bad);
  }
});
