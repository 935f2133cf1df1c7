// The soak's faults (--faults), launched during the churn 0.5-2.5 s apart, overlapping (see
// run()). The first round tries every kind once, in a random order; after that it is drawn.
//   agent-kill         an agent dies before a random step of its pass or write of its journal
//                      (after 0-2 more of them), or between passes when none comes within 3 s;
//                      fenced off the API server at that instant; a new agent starts on the
//                      same node (same bus, same journal directory) 0-2 s later.
//                      Recovered: the new agent wrote its first status.
//   leader-failover    the controller replica holding the Lease is fenced and stopped without
//                      releasing it; a new replica is started. Recovered: a live replica leads
//                      and reconciles (the canary below).
//   watch-cut          every component's connections are reset (watches, requests in flight);
//                      new ones are refused for 0-1.5 s. Recovered: the controller reconciles.
//   apiserver-restart  (a private control plane only) kube-apiserver SIGKILLed, started again
//                      0-2 s later. Recovered: /readyz, then the controller reconciles.
//   host-load          host requests in flight on 1-3 queues of the host driver, draining after
//                      1-8 s: Wait waits (and may run past a short drainTimeoutSeconds), Fail
//                      refuses, Force hands them back. Nothing to recover from.
// "The controller reconciles" is a canary: a reservation the churn never touches gets a spec
// change, and the fault is recovered when its status reports that generation.
import type { OperatorClients } from '../src/k8s/client.js';
import { formatApqn } from '../src/apbus/ids.js';
import type { ApiServerRestarter } from './soak-apiserver.js';
import type { Random } from './soak-random.js';
import { within, type SoakAgent, type World } from './soak-world.js';

export const FAULT_KINDS = ['agent-kill', 'leader-failover', 'watch-cut', 'apiserver-restart', 'host-load'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const WEIGHTS: Record<FaultKind, number> = { 'agent-kill': 30, 'leader-failover': 12, 'watch-cut': 18, 'apiserver-restart': 8, 'host-load': 30 };
/** At most one API server restart this often (each costs seconds of CPU). */
const APISERVER_RESTART_GAP_MS = 15_000;
const RECOVERY_MS = 60_000;

export interface FaultRecord {
  kind: FaultKind;
  /** s since the churn started. */
  at: number;
  detail: string;
  /** undefined: nothing to recover from (host load). */
  recovered?: boolean;
  recoveryMs?: number;
}

export interface Canary {
  namespace: string;
  name: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Faults {
  readonly records: FaultRecord[] = [];
  #started = 0;
  #lastApiRestart = -Infinity;
  #canaryEdits = 0;

  constructor(
    private readonly world: World,
    private readonly clients: OperatorClients,
    private readonly canary: Canary,
    private readonly restarter: ApiServerRestarter | undefined,
    private readonly say: (line: string) => void,
  ) {}

  get kinds(): FaultKind[] {
    return FAULT_KINDS.filter((k) => k !== 'apiserver-restart' || this.restarter);
  }

  /**
   * Injects faults until `until` (performance.now() ms); returns once the last one is over.
   * Faults overlap: one is launched every 0.5-2.5 s while earlier ones are still recovering,
   * except that the cluster-wide ones (failover, watch cut, API server restart) take turns and
   * an agent being killed and restarted is not picked again until it is back. Each fault draws
   * from its own stream (forked by its number), so its choices do not depend on timing.
   */
  async run(rng: Random, until: number): Promise<void> {
    this.#started = performance.now();
    const firstRound = rng.shuffle(this.kinds);
    const running: Promise<void>[] = [];
    let clusterWide = false;
    const agentsBusy = new Set<string>();
    for (let n = 1; ; n++) {
      await sleep(rng.int(500, 2500));
      if (performance.now() >= until) break;
      const late = until - performance.now() < 8_000; // an API server restart would stop most of what is left
      const launchable = (k: FaultKind): boolean => {
        if (k === 'agent-kill') return agentsBusy.size < this.world.agents.length;
        if (k === 'apiserver-restart' && (late || performance.now() - this.#lastApiRestart < APISERVER_RESTART_GAP_MS)) return false;
        if (k === 'leader-failover' || k === 'watch-cut' || k === 'apiserver-restart') return !clusterWide;
        return true;
      };
      const first = firstRound.findIndex(launchable);
      const open = this.kinds.filter(launchable);
      const kind = first >= 0 ? firstRound.splice(first, 1)[0]! : rng.weighted(Object.fromEntries(open.map((k) => [k, WEIGHTS[k]])) as Record<FaultKind, number>);
      const frng = rng.fork(`fault-${n}`);
      const at = (performance.now() - this.#started) / 1000;
      const wide = kind === 'leader-failover' || kind === 'watch-cut' || kind === 'apiserver-restart';
      if (wide) clusterWide = true;
      const agent = kind === 'agent-kill' ? frng.pick(this.world.agents.filter((a) => !agentsBusy.has(a.name))) : undefined;
      if (agent) agentsBusy.add(agent.name);
      running.push(
        this.#inject(kind, frng, agent)
          .catch((err: unknown) => ({ detail: `could not inject: ${err instanceof Error ? err.message : String(err)}`, recovered: false }))
          .then((result) => {
            if (wide) clusterWide = false;
            if (agent) agentsBusy.delete(agent.name);
            const record: FaultRecord = { kind, at, ...result };
            this.records.push(record);
            const recovery = record.recovered === undefined ? '' : record.recovered ? `; recovered in ${((record.recoveryMs ?? 0) / 1000).toFixed(1)} s` : '; NOT recovered';
            this.say(`${at.toFixed(1)} s: ${kind}: ${record.detail}${recovery}`);
          }),
      );
    }
    await Promise.all(running);
    this.records.sort((a, b) => a.at - b.at);
  }

  async #inject(kind: FaultKind, rng: Random, agentToKill?: SoakAgent): Promise<Omit<FaultRecord, 'kind' | 'at'>> {
    switch (kind) {
      case 'agent-kill': {
        const agent = agentToKill!;
        const step = await agent.kill(rng.int(0, 2), 3000);
        await sleep(rng.int(0, 2000));
        const t0 = performance.now();
        const ok = await agent.start(RECOVERY_MS);
        const where = step ? `before ${step}` : 'between passes';
        return { detail: `agent on ${agent.name} (${agent.node.kernel}) killed ${where}, agent #${agent.incarnations} started`, recovered: ok, recoveryMs: performance.now() - t0 };
      }
      case 'leader-failover': {
        const leader = await this.world.waitForLeader(RECOVERY_MS);
        if (!leader) return { detail: 'no replica led to be killed', recovered: false };
        const t0 = performance.now();
        this.world.killController(leader);
        const replacement = await this.world.startController();
        const next = await this.world.waitForLeader(RECOVERY_MS, leader);
        const ok = next !== undefined && (await this.#controllerReconciles(t0));
        return {
          detail: `leader ${leader.identity} killed, ${replacement.identity} started${next ? `, ${next.identity} leads` : ''}`,
          recovered: ok,
          recoveryMs: performance.now() - t0,
        };
      }
      case 'watch-cut': {
        const refuseMs = rng.int(0, 1500);
        const t0 = performance.now();
        await this.world.cutAll(refuseMs);
        const ok = await this.#controllerReconciles(t0);
        return { detail: `every connection reset, new ones refused for ${refuseMs} ms`, recovered: ok, recoveryMs: performance.now() - t0 };
      }
      case 'apiserver-restart': {
        this.#lastApiRestart = performance.now();
        const t0 = performance.now();
        const { readyAfterMs } = await this.restarter!.restart(rng.int(0, 2000));
        const ok = await this.#controllerReconciles(t0);
        return { detail: `kube-apiserver killed, ready again after ${(readyAfterMs / 1000).toFixed(1)} s`, recovered: ok, recoveryMs: performance.now() - t0 };
      }
      case 'host-load': {
        const agent = rng.pick(this.world.agents);
        const hostQueues = agent.model.boundDevices('cex4queue');
        const loaded: string[] = [];
        for (const name of rng.sample(hostQueues, rng.int(1, 3))) {
          const [a, d] = name.split('.') as [string, string];
          const apqn = { adapter: parseInt(a, 16), domain: parseInt(d, 16) };
          const requests = rng.int(1, 5);
          const seconds = rng.int(1, 8);
          try {
            agent.model.addHostLoad(apqn, requests, seconds);
            loaded.push(`${formatApqn(apqn)} (${requests} for ${seconds} s)`);
          } catch {
            // the queue left the host driver meanwhile, or is offline
          }
        }
        return { detail: `host requests on ${agent.name}: ${loaded.join(', ') || 'none (no host queue took them)'}` };
      }
    }
  }

  /** The canary's spec changes; true once a controller reported that generation in its status. */
  async #controllerReconciles(since: number): Promise<boolean> {
    const { namespace, name } = this.canary;
    const deadline = since + RECOVERY_MS;
    let generation: number | undefined;
    while (performance.now() < deadline) {
      try {
        if (generation === undefined) {
          const patched = await this.clients.reservations.patch({ namespace, name }, { spec: { drainTimeoutSeconds: 100 + (this.#canaryEdits++ % 900) } });
          generation = patched.metadata.generation;
        }
        const r = await within(this.clients.reservations.get({ namespace, name }), 5000);
        if (r && generation !== undefined && (r.status?.observedGeneration ?? 0) >= generation) return true;
      } catch {
        // the API server may still be coming back
      }
      await sleep(200);
    }
    return false;
  }
}
