// The event recorder against the real API server: what `kubectl get events` and
// `kubectl describe` show, MicroTime acceptance, and aggregation of repeats.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { FakeClock } from '../../src/k8s/clock.js';
import { EventRecorder, REPORTING_CONTROLLER } from '../../src/k8s/events.js';
import { kubeConfig, kubectl, testNamespace } from '../support/cluster.js';
import { gadgets, widgets } from './testcrds.js';

const unique = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

/** Core/v1 events about one object, as kubectl describe finds them. */
async function coreEventsAbout(namespace: string, uid: string): Promise<k8s.CoreV1Event[]> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.uid=${uid}` });
  return list.items;
}

/** The same events read through events.k8s.io/v1 as raw JSON (times as the server sent them). */
function rawEvents(namespace: string): Array<Record<string, any>> {
  const out = kubectl(['get', 'events.v1.events.k8s.io', '-n', namespace, '-o', 'json']);
  if (out.status !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout).items;
}

test('an event about a custom object is shown by kubectl get events and kubectl describe', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const w = await client.create({ metadata: { name: 'w', namespace: ns } });
  const recorder = new EventRecorder(kubeConfig(), { reportingInstance: 'controller-0' });
  recorder.normal(w, 'Scheduled', 'Placed on node z1 (queues 05.0004, 05.0005)', 'Schedule');
  await recorder.flush();

  const [event] = await coreEventsAbout(ns, w.metadata.uid!);
  t.truthy(event, 'visible as a core/v1 Event selected by involvedObject.uid');
  t.is(event!.reason, 'Scheduled');
  t.is(event!.message, 'Placed on node z1 (queues 05.0004, 05.0005)');
  t.is(event!.type, 'Normal');
  t.is(event!.reportingComponent, REPORTING_CONTROLLER);
  t.is(event!.reportingInstance, 'controller-0');
  t.is(event!.involvedObject.kind, 'Widget');
  t.is(event!.involvedObject.name, 'w');

  const [raw] = rawEvents(ns);
  t.regex(raw!.eventTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime with six fractional digits');
  t.is(raw!.action, 'Schedule');

  const get = kubectl(['get', 'events', '-n', ns]);
  t.is(get.status, 0, get.stderr);
  t.regex(get.stdout, /Scheduled\s+widget\/w\s+Placed on node z1/);
  const describe = kubectl(['describe', 'widgets.test.ap.s390x.io', 'w', '-n', ns]);
  t.is(describe.status, 0, describe.stderr);
  t.regex(describe.stdout, /Events:[\s\S]*Normal\s+Scheduled\s+.*ap\.s390x\.io\/apqn-operator.*Placed on node z1/);
});

test('repeats within the window update one event series instead of creating events', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const w = await client.create({ metadata: { name: 'w', namespace: ns } });
  const recorder = new EventRecorder(kubeConfig(), { reportingInstance: 'controller-0' });
  for (let i = 0; i < 5; i++) {
    recorder.warning(w, 'InUse', '05.0004 has 3 host requests in flight');
    if (i === 1) await recorder.flush(); // some repeats after the event exists, some while writing
  }
  recorder.warning(w, 'InUse', '05.0005 has 1 host request in flight'); // another note: its own event
  await recorder.flush();

  const events = await coreEventsAbout(ns, w.metadata.uid!);
  t.is(events.length, 2);
  const repeated = events.find((e) => e.message?.startsWith('05.0004'))!;
  t.is(repeated.series?.count, 5);
  t.is(events.find((e) => e.message?.startsWith('05.0005'))!.series, undefined);
  const [raw] = rawEvents(ns).filter((e) => e.note.startsWith('05.0004'));
  t.regex(raw!.series.lastObservedTime, /\.\d{6}Z$/);
  const describe = kubectl(['describe', 'widgets.test.ap.s390x.io', 'w', '-n', ns]);
  t.regex(describe.stdout, /Warning\s+InUse\s+.*\(x5 over .*\).*05\.0004 has 3 host requests in flight/);
});

test('a repeat after the window starts a new event', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const w = await client.create({ metadata: { name: 'w', namespace: ns } });
  const clock = new FakeClock(Date.now());
  const recorder = new EventRecorder(kubeConfig(), { reportingInstance: 'c', clock, seriesWindowMs: 600_000 });
  recorder.warning(w, 'Stuck', 'queue 05.0004 stuck');
  await recorder.flush();
  clock.advance(599_000);
  recorder.warning(w, 'Stuck', 'queue 05.0004 stuck');
  await recorder.flush();
  clock.advance(600_001);
  recorder.warning(w, 'Stuck', 'queue 05.0004 stuck');
  await recorder.flush();
  const events = await coreEventsAbout(ns, w.metadata.uid!);
  t.deepEqual(events.map((e) => e.series?.count ?? 1).sort(), [1, 2]);
});

test('events about cluster-scoped objects go to the default namespace and show in describe', async (t) => {
  const client = await gadgets();
  const name = unique('g');
  t.teardown(() => client.delete(name).then(() => undefined));
  const g = await client.create({ metadata: { name } });
  const recorder = new EventRecorder(kubeConfig(), { reportingInstance: 'agent-z1' });
  recorder.normal(g, 'Synced', 'All 4 queues in place');
  await recorder.flush();
  const [event] = await coreEventsAbout('default', g.metadata.uid!);
  t.is(event?.reason, 'Synced');
  const describe = kubectl(['describe', 'gadgets.test.ap.s390x.io', name]);
  t.regex(describe.stdout, /Normal\s+Synced\s+.*All 4 queues in place/);
});

test('recording never throws, even when the server refuses the event', async (t) => {
  const recorder = new EventRecorder(kubeConfig(), { reportingInstance: 'c' });
  const ghost = { apiVersion: 'v1', kind: 'Widget', metadata: { name: 'x', namespace: unique('no-such-ns') } };
  t.notThrows(() => recorder.warning(ghost, 'Failed', 'namespace does not exist'));
  t.notThrows(() => recorder.normal({ metadata: {} }, 'Bad Reason With Spaces', 'x'.repeat(5000)));
  await t.notThrowsAsync(recorder.flush());
});

test('long notes are cut to the API limit rather than rejected', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const w = await client.create({ metadata: { name: 'w', namespace: ns } });
  const recorder = new EventRecorder(kubeConfig(), { reportingInstance: 'c' });
  recorder.warning(w, 'Displaced', 'ä'.repeat(2000));
  await recorder.flush();
  const [event] = await coreEventsAbout(ns, w.metadata.uid!);
  t.truthy(event);
  t.true(Buffer.byteLength(event!.message!) <= 1024);
  t.true(event!.message!.endsWith('...'));
});
