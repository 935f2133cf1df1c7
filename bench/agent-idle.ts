// Cost of an idle node agent: a 64 x 85-queue node (5,440 queues) on the model, a spec with
// four reservations applied, then the agent's 2 s rescan loop with nothing changing. Each
// rescan is one reconcileNode call; when neither spec nor bus fingerprint moved it answers
// from its cache, and every `resyncSeconds` (default 60) it does a full pass anyway.
// Prints CPU per idle rescan, per full pass, and the share of one core at a 2 s interval.
// Run: node --import=tsx bench/agent-idle.ts [rescans]
import { newAgentMemory, reconcileNode } from '../src/agent/core.js';
import { SysfsBackend } from '../src/apbus/backend.js';
import { ApBusModel, ManualClock } from '../src/apbus/model/index.js';
import { topologyFromObject } from '../src/apbus/topology.js';
import { VirtualSysfs } from '../src/apbus/virtual-sysfs.js';
import type { NodeStateSpec } from '../src/api/types.js';

const ADAPTERS = 64;
const DOMAINS = 85;
const INTERVAL_MS = 2000;
const TARGET_PERCENT = 2;
const rescans = Number(process.argv[2] ?? 300);

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
const cards = Array.from({ length: ADAPTERS }, (_, i) => ({ id: hex(i, 2), type: ['CEX8P', 'CEX8C', 'CEX7C'][i % 3]!, domains: `0000-${hex(DOMAINS - 1, 4)}` }));
const node = topologyFromObject({ nodes: [{ name: 'bench', kernel: '6.10', maxDomainId: DOMAINS - 1, cards }] }, 'bench').nodes[0]!;
const clock = new ManualClock(0);
const model = ApBusModel.fromTopology(node, { clock });
const backend = new SysfsBackend(new VirtualSysfs(model));

// Four reservations: domain d (bit cleared) on adapters 2d and 2d+1.
const spec: NodeStateSpec = {
  aqmask: [0, 1, 2, 3].map((d) => ({ id: hex(d, 4), host: false })),
  queues: [0, 1, 2, 3].flatMap((d) => [2 * d, 2 * d + 1].map((a) => ({ apqn: `${hex(a, 2)}.${hex(d, 4)}`, reservation: `bench/r${d}`, inUsePolicy: 'Wait' as const, drainTimeoutSeconds: 300 }))),
  mdevs: [0, 1, 2, 3].map((d) => ({
    uuid: `0000000${d}-0000-4000-8000-000000000000`,
    reservation: `bench/r${d}`,
    adapters: [hex(2 * d, 2), hex(2 * d + 1, 2)],
    domains: [hex(d, 4)],
    controlDomains: [hex(d, 4)],
  })),
};

const memory = newAgentMemory();
const cpuMs = (f: () => void): number => {
  const start = process.cpuUsage();
  f();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

// Apply.
let applyCpu = 0;
let passes = 0;
for (;;) {
  let r!: ReturnType<typeof reconcileNode>;
  applyCpu += cpuMs(() => (r = reconcileNode(backend, spec, memory, { nowMs: clock.now() * 1000 })));
  passes++;
  if (r.synced && r.requeueAfterMs === undefined) break;
  if (passes > 20) throw new Error(`did not converge: ${JSON.stringify(r.status.conditions)}`);
  model.tick(Math.max(1, (r.requeueAfterMs ?? 0) / 1000));
}
console.log(`apply: ${passes} passes, ${applyCpu.toFixed(0)} ms CPU (${memory.lastStatus?.queueCount} queues, ${memory.lastStatus?.mdevs?.length} mdevs)`);

// Idle rescans.
const idle: number[] = [];
const full: number[] = [];
let total = 0;
let last = memory.lastStatus;
for (let i = 0; i < rescans; i++) {
  model.tick(INTERVAL_MS / 1000);
  let r!: ReturnType<typeof reconcileNode>;
  const ms = cpuMs(() => (r = reconcileNode(backend, spec, memory, { nowMs: clock.now() * 1000 })));
  total += ms;
  (r.status === last ? idle : full).push(ms);
  last = r.status;
  if (!r.synced) throw new Error('lost Synced while idle');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] ?? 0;
const share = (ms: number) => (ms / INTERVAL_MS) * 100;
const amortized = share(total / rescans);
console.log(`idle rescan (fingerprint only): ${idle.length} x, median ${median(idle).toFixed(2)} ms, p95 ${p95(idle).toFixed(2)} ms CPU = ${share(median(idle)).toFixed(2)} % of a core at ${INTERVAL_MS / 1000} s`);
console.log(`full pass (periodic resync):    ${full.length} x, median ${median(full).toFixed(1)} ms CPU`);
console.log(`amortized over ${rescans} rescans (${(rescans * INTERVAL_MS) / 1000} s): ${(total / rescans).toFixed(2)} ms per rescan = ${amortized.toFixed(2)} % of a core — ${amortized < TARGET_PERCENT ? 'PASS' : 'MISS'} (target < ${TARGET_PERCENT} %)`);
