// NodeStatusWriter's timing rules on a fake clock and an in-memory stand-in for the API server
// (resourceVersion preconditions, merge patches, injected failures): what is written when, and
// how often. The real API server is exercised in runtime-status.test.ts.
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import type { APNodeState, NodeStateStatus } from '../../src/api/types.js';
import { NodeStatusWriter, classifyDifference } from '../../src/agent/status-writer.js';
import { FakeClock } from '../../src/k8s/clock.js';
import { NodeStateType, type CustomResourceClient } from '../../src/k8s/client.js';
import { setLogLevel } from '../../src/log.js';

setLogLevel('silent');

function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** Just enough of an API server for one APNodeState's status subresource. */
class FakeApi {
  object: APNodeState;
  patches: Array<Record<string, unknown>> = [];
  /** Errors thrown by the next patchStatus calls, in order. */
  failures: unknown[] = [];
  /** Called before a patch is applied (a concurrent writer sneaks in here). */
  beforePatch?: () => void;
  /** The next patchStatus calls never answer (a dead connection). */
  hangs = 0;

  constructor(status?: NodeStateStatus) {
    this.object = { apiVersion: 'ap.s390x.io/v1alpha1', kind: 'APNodeState', metadata: { name: 'n1', uid: 'u1', resourceVersion: '1', generation: 1 }, spec: {}, ...(status ? { status } : {}) };
  }

  bump(): void {
    this.object = { ...this.object, metadata: { ...this.object.metadata, resourceVersion: String(Number(this.object.metadata.resourceVersion) + 1) } };
  }

  client(): CustomResourceClient<APNodeState> {
    const copy = () => structuredClone(this.object);
    return {
      type: NodeStateType,
      get: async () => copy(),
      find: async () => copy(),
      patchStatus: async (_key: unknown, body: { metadata?: { resourceVersion?: string }; status?: unknown }) => {
        if (this.hangs > 0) {
          this.hangs--;
          return new Promise<never>(() => undefined);
        }
        const failure = this.failures.shift();
        if (failure) throw failure;
        this.beforePatch?.();
        const rv = body.metadata?.resourceVersion;
        if (rv && rv !== this.object.metadata.resourceVersion) throw new k8s.ApiException(409, 'Conflict', '{"reason":"Conflict"}', {});
        this.patches.push(body.status as Record<string, unknown>);
        this.object = { ...this.object, status: applyMergePatch(this.object.status, body.status) as NodeStateStatus };
        this.bump();
        return copy();
      },
    } as unknown as CustomResourceClient<APNodeState>;
  }
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

const queues = (counts: number[]) => counts.map((c, i) => ({ apqn: `05.000${i}`, driver: 'cex4queue', online: true, requestsInFlight: 0, requestCount: c }));
const status = (over: Partial<NodeStateStatus> = {}): NodeStateStatus => ({
  apmask: '0xff',
  queueCount: 2,
  queues: queues([0, 0]),
  conditions: [{ type: 'Synced', status: 'True', reason: 'Synced', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z' }],
  ...over,
});

function setup(opts: { heartbeatMs?: number; minIntervalMs?: number } = {}) {
  const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
  const api = new FakeApi();
  const writer = new NodeStatusWriter({
    client: api.client(),
    nodeName: 'n1',
    heartbeatMs: opts.heartbeatMs ?? 10_000,
    minIntervalMs: opts.minIntervalMs ?? 250,
    backoff: { initialMs: 500, maxMs: 4000 },
    clock,
  });
  writer.observe(api.object);
  const advance = async (ms: number, step = 50) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await settle();
    }
  };
  return { clock, api, writer, advance };
}

test('classifyDifference: counters only, significant, none', (t) => {
  const cases: Array<{ a: NodeStateStatus; b: NodeStateStatus; expected: ReturnType<typeof classifyDifference>; why: string }> = [
    { a: status(), b: status(), expected: 'none', why: 'same status' },
    { a: status({ heartbeatTime: 'x' }), b: status({ heartbeatTime: 'y' }), expected: 'none', why: 'heartbeat alone is no difference' },
    { a: status(), b: status({ queues: queues([0, 7]) }), expected: 'counters', why: 'request counters moved' },
    { a: status(), b: status({ queues: queues([0, 7]), apmask: '0x7f' }), expected: 'significant', why: 'a mask changed too' },
    { a: status(), b: status({ queues: [{ ...queues([0])[0]!, driver: 'vfio_ap' }, queues([0, 0])[1]!] }), expected: 'significant', why: 'a driver changed' },
    { a: status(), b: status({ observedGeneration: 2 }), expected: 'significant', why: 'a new generation was applied' },
  ];
  for (const c of cases) t.is(classifyDifference(c.a, c.b), c.expected, c.why);
});

test('first status is written at once, with a MicroTime heartbeat and the observed generation', async (t) => {
  const { api, writer, advance } = setup();
  writer.offer(status(), 3);
  await advance(10);
  t.is(api.patches.length, 1);
  t.regex(api.object.status?.heartbeatTime ?? '', /^2026-01-01T00:00:00\.\d{6}Z$/);
  t.is(api.object.status?.observedGeneration, 3);
});

test('an unchanged status is only heartbeated, each heartbeat a one-field patch', async (t) => {
  const { api, writer, advance } = setup({ heartbeatMs: 10_000 });
  writer.offer(status(), 1);
  await advance(10);
  for (let i = 0; i < 60; i++) {
    writer.offer(status(), 1); // a pass every 500 ms for 30 s
    await advance(500);
  }
  t.is(api.patches.length, 1 + 3, 'the first write and one heartbeat per 10 s');
  for (const p of api.patches.slice(1)) t.deepEqual(Object.keys(p), ['heartbeatTime']);
  t.is(writer.stats().heartbeats, 3);
});

test('counter-only changes wait for the heartbeat; real changes go out promptly, bursts coalesced', async (t) => {
  const { api, writer, advance } = setup({ heartbeatMs: 10_000, minIntervalMs: 250 });
  writer.offer(status(), 1);
  await advance(10);
  writer.offer(status({ queues: queues([1, 2]) }), 1);
  await advance(5000);
  t.is(api.patches.length, 1, 'counters alone are not worth a write');
  await advance(5000);
  t.is(api.patches.length, 2, 'they ride along with the heartbeat');
  t.deepEqual(api.object.status?.queues?.map((q) => q.requestCount), [1, 2]);

  for (let i = 0; i < 5; i++) {
    writer.offer(status({ queues: queues([1, 2]), apmask: `0x${(0xf0 + i).toString(16)}` }), 1);
    await advance(50);
  }
  await advance(500);
  // The heartbeat left one write of the burst of three spent: two go at once, the other three
  // changes coalesce into one write a minIntervalMs later.
  t.true(api.patches.length <= 2 + 3, `five changes within 250 ms cost at most three writes (${api.patches.length - 2})`);
  t.is(api.object.status?.apmask, '0xf4', 'the newest status won');
});

const progress = (generation: number): NodeStateStatus =>
  status({ observedGeneration: generation, conditions: [{ type: 'Synced', status: 'False', reason: 'Draining', message: 'confirming', lastTransitionTime: '2026-01-01T00:00:00Z' }] });

test('a short-lived status (settlesAtMs) is held; the final one of the generation is the only write', async (t) => {
  const { api, clock, writer, advance } = setup({ heartbeatMs: 10_000, minIntervalMs: 250 });
  writer.offer(status(), 1);
  await advance(10);
  const start = clock.now();
  // Pass 1 of generation 2: only confirming that the queues are quiet, done in a second.
  writer.offer(progress(2), 2, { settlesAtMs: start + 1000 });
  await advance(300);
  writer.offer(progress(2), 2, { settlesAtMs: start + 1000 }); // a rescan in between
  await advance(650);
  t.is(api.patches.length, 1, 'nothing written while it settles');
  writer.offer(status({ apmask: '0x0f' }), 2); // the pass that applied it
  await advance(300);
  t.is(api.patches.length, 2, 'one write for generation 2');
  t.is(api.object.status?.observedGeneration, 2);
  t.is(api.object.status?.apmask, '0x0f', 'with the final state');
});

test('a held status goes out when the pass it waits for is late (settlesAtMs + grace), and a lasting one at once', async (t) => {
  const { api, clock, writer, advance } = setup({ heartbeatMs: 10_000, minIntervalMs: 250 });
  writer.offer(status(), 1);
  await advance(10);
  const start = clock.now();
  writer.offer(progress(2), 2, { settlesAtMs: start + 1000 });
  await advance(1400);
  t.is(api.patches.length, 1, 'held through settlesAtMs and most of the grace');
  await advance(200);
  t.is(api.patches.length, 2, 'written 500 ms after settlesAtMs');
  t.is(api.object.status?.observedGeneration, 2);

  // A wait that lasts (requests in flight): no hint, written within minIntervalMs.
  writer.offer({ ...progress(3), apmask: '0x01' }, 3);
  await advance(300);
  t.is(api.patches.length, 3);
  t.is(api.object.status?.observedGeneration, 3);
});

test('a chain of short-lived statuses is written at most maxHoldMs apart; a heartbeat does not carry one out early', async (t) => {
  const { api, clock, writer, advance } = setup({ heartbeatMs: 2000, minIntervalMs: 250 });
  writer.offer(status(), 1);
  await advance(10);
  // Each pass promises more in a second, for 7 s (a node working through its steps).
  for (let i = 0; i < 14; i++) {
    writer.offer({ ...progress(2), apmask: `0x${(0x10 + i).toString(16)}` }, 2, { settlesAtMs: clock.now() + 1000 });
    await advance(500);
  }
  const writes = api.patches.length - 1;
  t.true(writes >= 2 && writes <= 3, `one write per 3 s of holding (${writes})`);
});

test('a concurrent writer (409) is re-read and retried; an unreachable API server is retried with backoff', async (t) => {
  const { api, writer, advance } = setup();
  writer.offer(status(), 1);
  await advance(10);

  let sneak = true;
  api.beforePatch = () => {
    if (!sneak) return;
    sneak = false;
    api.object = { ...api.object, metadata: { ...api.object.metadata, labels: { other: 'writer' } } };
    api.bump();
  };
  writer.offer(status({ apmask: '0x0f' }), 2);
  await advance(500);
  t.is(api.object.status?.apmask, '0x0f');
  t.is(writer.stats().conflicts, 1);

  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  api.failures = [refused, refused, refused];
  writer.offer(status({ apmask: '0x01' }), 3);
  await advance(300);
  t.is(writer.stats().failures, 1);
  writer.offer(status({ apmask: '0x02' }), 3); // newer status while unreachable
  await advance(100);
  t.is(writer.stats().failures, 1, 'backing off (500 ms), no new attempt yet');
  await advance(4000);
  t.is(writer.stats().failures, 3, 'retried with growing delays');
  await advance(5000);
  t.is(api.object.status?.apmask, '0x02', 'once reachable, the newest status is written');
  t.is(api.object.status?.observedGeneration, 3);
});

test('the object deleted (404): recreate is asked for and the status lands on the new object', async (t) => {
  const clock = new FakeClock(0);
  const api = new FakeApi();
  let recreated = 0;
  const writer = new NodeStatusWriter({
    client: api.client(),
    nodeName: 'n1',
    clock,
    recreate: async () => {
      recreated++;
      api.object = { ...api.object, metadata: { ...api.object.metadata, uid: 'u2', resourceVersion: '100' } };
      return structuredClone(api.object);
    },
  });
  writer.observe(api.object);
  api.failures = [new k8s.ApiException(404, 'NotFound', '{"reason":"NotFound"}', {})];
  writer.offer(status(), 1);
  clock.advance(1);
  await settle();
  t.is(recreated, 1);
  t.is(api.object.metadata.uid, 'u2');
  t.is(api.object.status?.apmask, '0xff');
});

test('messages longer than the schema allows are cut, not refused whole (422)', async (t) => {
  const { api, writer, advance } = setup();
  const long = `05.0004 ${'x'.repeat(40_000)}`;
  writer.offer(
    status({
      conditions: [{ type: 'Synced', status: 'False', reason: 'Draining', message: long, lastTransitionTime: '2026-01-01T00:00:00Z' }],
      reservations: [{ reservation: 'a/b', phase: 'Draining', reason: 'Draining', message: 'ü'.repeat(20_000) }],
    }),
    1,
  );
  await advance(10);
  const c = api.object.status!.conditions![0]!;
  const r = api.object.status!.reservations![0]!;
  t.true(Buffer.byteLength(c.message) <= 32_768);
  t.true(c.message.startsWith('05.0004 xxx'));
  t.regex(c.message, /\(truncated\)$/);
  t.true(Buffer.byteLength(r.message) <= 32_768);
  t.false(r.message.includes('\uFFFD'), 'no broken multi-byte character');
});

test('with requestPass, a heartbeat carries the status of a pass run after it fell due; no pass, no heartbeat', async (t) => {
  const clock = new FakeClock(0);
  const api = new FakeApi();
  let requests = 0;
  let loopAlive = true;
  const writer = new NodeStatusWriter({
    client: api.client(),
    nodeName: 'n1',
    clock,
    heartbeatMs: 1000,
    requestPass: () => {
      requests++;
      // The loop answers with a fresh pass, unless it is stuck.
      if (loopAlive) queueMicrotask(() => writer.offer(status({ apmask: `0x${requests}` }), 1));
    },
  });
  writer.observe(api.object);
  writer.offer(status(), 1);
  const advance = async (ms: number) => {
    for (let i = 0; i < ms; i += 50) {
      clock.advance(50);
      await settle();
    }
  };
  await advance(100);
  t.is(api.patches.length, 1, 'the first status goes out at once');
  await advance(1000);
  t.is(requests, 1, 'the heartbeat asked for a pass');
  t.is(api.patches.length, 2);
  t.is(api.object.status?.apmask, '0x1', "the heartbeat carried that pass's status");
  loopAlive = false;
  await advance(5000);
  t.is(requests, 2, 'asked once more, and not again for the same heartbeat');
  t.is(api.patches.length, 2, 'a stuck loop gets no heartbeat');
  loopAlive = true;
  writer.offer(status({ apmask: '0xaa' }), 1); // the loop recovers
  await advance(100);
  t.is(api.patches.length, 3);
  t.is(api.object.status?.apmask, '0xaa');
});

test('a write that never answers times out, and the next one goes through', async (t) => {
  const clock = new FakeClock(0);
  const api = new FakeApi();
  const writer = new NodeStatusWriter({ client: api.client(), nodeName: 'n1', clock, writeTimeoutMs: 5000, backoff: { initialMs: 100, maxMs: 100 } });
  writer.observe(api.object);
  api.hangs = 1;
  writer.offer(status(), 1);
  for (let i = 0; i < 120; i++) {
    clock.advance(50);
    await settle();
  }
  t.is(writer.stats().failures, 1);
  t.regex(writer.stats().lastError ?? '', /no answer within 5 s/);
  t.is(api.patches.length, 1, 'retried after the timeout');
  await writer.stop();
});
