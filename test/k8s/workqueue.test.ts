import test from 'ava';
import { FakeClock } from '../../src/k8s/clock.js';
import {
  ItemExponentialBackoff,
  MaxOfRateLimiter,
  TokenBucket,
  WorkQueue,
  defaultRateLimiter,
  runWorkers,
} from '../../src/k8s/workqueue.js';

/** A queue on a fake clock with only per-key backoff (no token bucket) unless given one. */
function fakeQueue(limiter = new ItemExponentialBackoff(5, 300_000)) {
  const clock = new FakeClock(1_000_000);
  const queue = new WorkQueue({ name: 'test', clock, rateLimiter: limiter });
  return { clock, queue };
}

/** Everything get() hands out right now, without waiting. */
async function takeAll(queue: WorkQueue): Promise<string[]> {
  const out: string[] = [];
  while (queue.len() > 0) out.push((await queue.get())!);
  return out;
}

test('a key added several times is queued once, in first-add order', async (t) => {
  const { queue } = fakeQueue();
  for (const k of ['ns/a', 'ns/b', 'ns/a', 'ns/c', 'ns/b']) queue.add(k);
  t.is(queue.len(), 3);
  t.deepEqual(await takeAll(queue), ['ns/a', 'ns/b', 'ns/c']);
});

test('a key being processed is not handed out again until done, then exactly once more', async (t) => {
  const { queue } = fakeQueue();
  queue.add('a');
  const first = await queue.get();
  t.is(first, 'a');
  queue.add('a');
  queue.add('a');
  t.is(queue.len(), 0, 'the re-add waits for done()');
  let second: string | undefined;
  void queue.get().then((k) => (second = k));
  await Promise.resolve();
  t.is(second, undefined, 'a waiting getter does not receive the key being processed');
  queue.done('a');
  await Promise.resolve();
  t.is(second, 'a');
  queue.done('a');
  t.is(queue.len(), 0, 'no further copy: the two re-adds collapsed into one');
});

test('done without a re-add leaves the key out of the queue', async (t) => {
  const { queue } = fakeQueue();
  queue.add('a');
  await queue.get();
  queue.done('a');
  t.is(queue.len(), 0);
});

test('a waiting get() receives the next added key', async (t) => {
  const { queue } = fakeQueue();
  const pending = queue.get();
  queue.add('x');
  t.is(await pending, 'x');
  queue.add('x');
  t.is(queue.len(), 0, 'x is being processed, so the add waits for done');
});

test('addAfter delays the key on the clock and keeps the earliest time per key', async (t) => {
  const { clock, queue } = fakeQueue();
  queue.addAfter('a', 1000);
  queue.addAfter('a', 5000); // later: ignored
  queue.addAfter('b', 3000);
  queue.addAfter('b', 500); // earlier: replaces
  t.is(queue.len(), 0);
  clock.advance(499);
  t.is(queue.len(), 0);
  clock.advance(1);
  t.deepEqual(await takeAll(queue), ['b']);
  clock.advance(500);
  t.deepEqual(await takeAll(queue), ['a']);
  clock.advance(10_000);
  t.is(queue.len(), 0, 'the superseded timers do not add again');
});

test('addAfter with a non-positive delay adds at once', async (t) => {
  const { queue } = fakeQueue();
  queue.addAfter('a', 0);
  queue.addAfter('b', -5);
  t.deepEqual(await takeAll(queue), ['a', 'b']);
});

const backoffCases = [
  { failures: 1, expected: 5, why: 'the first retry waits the base delay' },
  { failures: 2, expected: 10, why: 'the second retry doubles it' },
  { failures: 5, expected: 80, why: 'the fifth retry waits base·2^4' },
  { failures: 17, expected: 300_000, why: 'the delay is capped at 5 minutes' },
  { failures: 2000, expected: 300_000, why: 'very many retries stay at the cap (no overflow)' },
];
for (const c of backoffCases) {
  test(`per-key backoff: ${c.why}`, (t) => {
    const limiter = new ItemExponentialBackoff(5, 300_000);
    let last = -1;
    for (let i = 0; i < c.failures; i++) last = limiter.when('k');
    t.is(last, c.expected);
    t.is(limiter.numRequeues('k'), c.failures);
  });
}

test('addRateLimited grows the delay per key; forget resets it; other keys are independent', async (t) => {
  const { clock, queue } = fakeQueue();
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    const before = clock.now();
    queue.addRateLimited('a');
    let waited = 0;
    while (queue.len() === 0) {
      clock.advance(1);
      waited++;
    }
    delays.push(clock.now() - before);
    t.is(waited, delays[delays.length - 1]);
    t.is(await queue.get(), 'a');
    queue.done('a');
  }
  t.deepEqual(delays, [5, 10, 20, 40]);
  t.is(queue.numRequeues('a'), 4);
  t.is(queue.numRequeues('b'), 0);
  queue.forget('a');
  t.is(queue.numRequeues('a'), 0);
  queue.addRateLimited('a');
  clock.advance(4);
  t.is(queue.len(), 0);
  clock.advance(1);
  t.is(queue.len(), 1, 'after forget the backoff starts again at the base delay');
});

test('the token bucket lets a burst through, then spaces keys at the qps rate', (t) => {
  const clock = new FakeClock(0);
  const bucket = new TokenBucket(10, 3, clock);
  t.deepEqual([bucket.when(), bucket.when(), bucket.when()], [0, 0, 0], 'burst of 3');
  t.is(bucket.when(), 100, 'the 4th waits one token (100 ms at 10 qps)');
  t.is(bucket.when(), 200, 'the 5th waits two tokens');
  clock.advance(1000);
  t.is(bucket.when(), 0, 'refilled after a second (capped at the burst)');
});

test('the default limiter is the larger of per-key backoff and the overall bucket', (t) => {
  const clock = new FakeClock(0);
  const limiter = defaultRateLimiter(clock);
  const first = Array.from({ length: 100 }, (_, i) => limiter.when(`k${i}`));
  t.true(first.every((d) => d === 5), 'within the burst each key waits its own 5 ms');
  t.is(limiter.when('k100'), 100, 'past the burst of 100 the bucket (10 qps) dominates');
  const max = new MaxOfRateLimiter(new ItemExponentialBackoff(5, 1000));
  for (let i = 0; i < 3; i++) max.when('x');
  t.is(max.numRequeues('x'), 3);
});

test('shutDown releases waiting getters, ignores new adds and cancels delayed adds', async (t) => {
  const { clock, queue } = fakeQueue();
  queue.addAfter('later', 100);
  const waiting = queue.get();
  queue.shutDown();
  t.is(await waiting, undefined);
  queue.add('new');
  queue.addRateLimited('new');
  clock.advance(1000);
  t.is(queue.len(), 0);
  t.is(await queue.get(), undefined);
  t.is(clock.pending(), 0, 'no timer left behind');
});

test('keys queued before shutDown are still handed out, then get() ends', async (t) => {
  const { queue } = fakeQueue();
  queue.add('a');
  queue.add('b');
  queue.shutDown();
  t.is(await queue.get(), 'a');
  t.is(await queue.get(), 'b');
  t.is(await queue.get(), undefined);
});

test('drained() waits for keys in flight to be done', async (t) => {
  const { queue } = fakeQueue();
  queue.add('a');
  const key = (await queue.get())!;
  queue.shutDown();
  let drained = false;
  const d = queue.drained().then(() => (drained = true));
  await Promise.resolve();
  t.false(drained);
  queue.done(key);
  await d;
  t.true(drained);
});

test('runWorkers: a failing sync is retried with backoff, success forgets, requeueAfter schedules', async (t) => {
  const { clock, queue } = fakeQueue();
  const seen: Array<{ key: string; at: number }> = [];
  let failuresLeft = 2;
  const workers = runWorkers(queue, 2, async (key) => {
    seen.push({ key, at: clock.now() });
    if (key === 'flaky' && failuresLeft-- > 0) throw new Error('temporary');
    if (key === 'poll' && seen.filter((s) => s.key === 'poll').length === 1) return { requeueAfterMs: 1000 };
  });
  const start = clock.now();
  queue.add('flaky');
  queue.add('poll');
  const settle = async () => {
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  };
  await settle();
  clock.advance(5);
  await settle();
  clock.advance(10);
  await settle();
  clock.advance(984);
  await settle();
  t.is(seen.filter((s) => s.key === 'poll').length, 1, 'not looked at again before its time');
  clock.advance(1);
  await settle();
  queue.shutDown();
  await workers;
  const at = (key: string) => seen.filter((s) => s.key === key).map((s) => s.at - start);
  t.deepEqual(at('flaky'), [0, 5, 15], 'two failures: retried after 5 then 10 ms');
  t.is(queue.numRequeues('flaky'), 0, 'the success forgot the failures');
  t.deepEqual(at('poll'), [0, 1000]);
  t.is(queue.numRequeues('poll'), 0, 'a requested requeue is not a failure');
});
