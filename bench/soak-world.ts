// What the soak runs: the real operator, in this process, against a real API server.
//   - one simulated node per SoakNode (an ApBusModel on the real clock) with the real agent on
//     it; an agent can be killed — before a step of its pass or a write of its journal (its
//     onStep/onJournal hook throws there, and at every later point of that instance too) or
//     between passes — and a new agent started on the same model and the same state directory
//     (the journal), as a restarted DaemonSet pod would find the same host;
//   - two controller replicas with leader election on a Lease with short timings; the leader
//     can be killed (it is stopped without releasing the lease) and a new replica started;
//   - a core Node per simulated node (labels for nodeSelector, like `apqn-operator dev`).
// Every component talks to the API server through its own Relay (bench/soak-proxy.ts): a kill
// fences it first, so a killed component writes nothing more, and a watch cut resets every
// component's connections at once. The controllers are scoped to the soak's namespace and
// nodes (the shared control plane of `npm test` has other tests' objects).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { ApBusModel, SystemClock } from '../src/apbus/model/index.js';
import { startAgent, type RunningAgent, type StartAgentOptions } from '../src/commands/agent.js';
import { startController, type RunningController } from '../src/commands/controller.js';
import { registerNodes } from '../src/commands/dev.js';
import { operatorClients } from '../src/k8s/client.js';
import { logger } from '../src/log.js';
import { Relay } from './soak-proxy.js';
import { soakTopology, type SoakNode } from './soak-topology.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves with the promise's value, or undefined after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

class AgentKilled extends Error {
  constructor(step: string) {
    super(`soak: agent killed before step "${step}"`);
  }
}

/** One simulated node and the agent on it (restartable). */
export class SoakAgent {
  readonly model: ApBusModel;
  /** The node's state directory (the agent's journal, as /var/lib/apqn-operator on a host): it
   *  outlives every agent started on the node, as the host's disk outlives a pod. */
  readonly stateDir: string;
  running: RunningAgent | undefined;
  /** Agents started on this node so far. */
  incarnations = 0;
  #relay: Relay;
  #crash: { skip: number; died: (step: string) => void } | undefined;

  constructor(
    readonly node: SoakNode,
    model: ApBusModel,
    relay: Relay,
    private readonly admin: k8s.KubeConfig,
  ) {
    this.model = model;
    this.#relay = relay;
    this.stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `apqn-soak-${node.name}-`));
  }

  get name(): string {
    return this.node.name;
  }

  /** Starts a new agent on this node's model; resolves when it wrote its first status (or after `readyMs`: false). */
  async start(readyMs = 60_000): Promise<boolean> {
    await this.#relay.reopen();
    const incarnation = ++this.incarnations;
    let dead = false;
    // A crash point is a step of a pass, or a journal write (before the bus change it covers).
    const point = (what: string) => {
      if (dead) throw new AgentKilled(what);
      const crash = this.#crash;
      if (!crash) return;
      if (crash.skip-- > 0) return;
      // Dies here: nothing more reaches the API server, nothing more of this instance runs.
      dead = true;
      this.#crash = undefined;
      this.#relay.fence();
      crash.died(what);
      throw new AgentKilled(what);
    };
    // stateDir: the agent keeps its journal there (without it, in memory, which a restart would
    // lose as a real node's disk never does).
    const options: StartAgentOptions = {
      kubeConfig: this.#relay.kubeConfig(this.admin),
      nodeName: this.node.name,
      model: this.model,
      stateDir: this.stateDir,
      recordEvents: false,
      log: logger('agent', { node: this.node.name, incarnation }),
      onStep: (_index, step) => point(`step "${step}"`),
      onJournal: (_index, what) => point(`journal write "${what}"`),
    };
    this.running = await startAgent(options);
    return (await within(this.running.ready().then(() => true), readyMs)) ?? false;
  }

  /**
   * Kills the agent at a crash point (a step or a journal write): after `skip` more points,
   * before the next one; when none comes within `waitMs`, between passes. Returns the point it
   * died before, if any.
   */
  async kill(skip: number, waitMs: number): Promise<string | undefined> {
    const died = new Promise<string>((resolve) => (this.#crash = { skip, died: resolve }));
    const step = await within(died, waitMs);
    this.#crash = undefined;
    this.#relay.fence();
    const running = this.running;
    this.running = undefined;
    await within(running?.stop() ?? Promise.resolve(), 15_000);
    return step;
  }

  async stop(): Promise<void> {
    this.#crash = undefined;
    const running = this.running;
    this.running = undefined;
    await within(running?.stop() ?? Promise.resolve(), 15_000);
    this.#relay.stop();
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }

  cut(refuseMs: number): Promise<void> {
    return this.#relay.cut(refuseMs);
  }
}

/** One controller replica. */
export class SoakController {
  constructor(
    readonly identity: string,
    readonly running: RunningController,
    private readonly relay: Relay,
  ) {}

  isLeading(): boolean {
    return !this.killed && this.running.isLeading();
  }

  killed = false;

  /** A crash: fenced off the API server at once, then stopped without releasing the lease. */
  kill(): Promise<void> {
    this.killed = true;
    this.relay.fence();
    return within(this.running.stop(), 15_000).then(() => this.relay.stop());
  }

  cut(refuseMs: number): Promise<void> {
    return this.relay.cut(refuseMs);
  }
}

export interface WorldOptions {
  /** Admin access to the API server. */
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  nodes: readonly SoakNode[];
  /** Lease timings of the two controller replicas. */
  leaseDurationMs?: number;
}

export class World {
  readonly agents: SoakAgent[] = [];
  readonly controllers: SoakController[] = [];
  /** Replicas killed, stopping in the background. */
  readonly #stopping: Promise<void>[] = [];
  #replicas = 0;

  private constructor(private readonly options: WorldOptions) {}

  get leaseName(): string {
    return `apqn-soak-${this.options.namespace}`;
  }

  static async start(options: WorldOptions): Promise<World> {
    const world = new World(options);
    try {
      const names = options.nodes.map((n) => n.name);
      await registerNodes(options.kubeConfig, names, logger('soak'));
      const topology = soakTopology(options.nodes);
      for (const node of options.nodes) {
        const model = ApBusModel.fromTopology(topology.nodes.find((n) => n.name === node.name)!, { clock: new SystemClock() });
        world.agents.push(new SoakAgent(node, model, await Relay.start(options.kubeConfig), options.kubeConfig));
      }
      const started = await Promise.all(world.agents.map((a) => a.start()));
      if (started.some((ok) => !ok)) throw new Error('an agent wrote no first status within 60 s');
      await world.startController();
      await world.startController();
      if (!(await world.waitForLeader(30_000))) throw new Error('no controller replica took the lease within 30 s');
      return world;
    } catch (err) {
      await world.stop();
      throw err;
    }
  }

  /** Starts one more controller replica (it campaigns for the lease). */
  async startController(): Promise<SoakController> {
    const relay = await Relay.start(this.options.kubeConfig);
    const identity = `soak-replica-${++this.#replicas}`;
    const nodes = new Set(this.options.nodes.map((n) => n.name));
    const leaseDurationMs = this.options.leaseDurationMs ?? 4_000;
    const running = await startController({
      kubeConfig: relay.kubeConfig(this.options.kubeConfig),
      leaderElect: true,
      identity,
      lease: {
        name: this.leaseName,
        namespace: this.options.namespace,
        leaseDurationMs,
        renewDeadlineMs: Math.round(leaseDurationMs * 0.75),
        retryPeriodMs: Math.round(leaseDurationMs / 8),
        releaseOnStop: false,
      },
      scope: { namespace: this.options.namespace, nodes: (name) => nodes.has(name) },
      log: logger('controller', { replica: identity }),
    });
    const replica = new SoakController(identity, running, relay);
    this.controllers.push(replica);
    return replica;
  }

  leader(): SoakController | undefined {
    return this.controllers.find((c) => c.isLeading());
  }

  async waitForLeader(ms: number, not?: SoakController): Promise<SoakController | undefined> {
    const deadline = performance.now() + ms;
    while (performance.now() < deadline) {
      const leader = this.leader();
      if (leader && leader !== not) return leader;
      await sleep(50);
    }
    return undefined;
  }

  /** Kills a replica (in the background) and forgets it. */
  killController(replica: SoakController): void {
    const i = this.controllers.indexOf(replica);
    if (i >= 0) this.controllers.splice(i, 1);
    this.#stopping.push(replica.kill());
  }

  /** Resets every component's connections; each refuses new ones for `refuseMs`. */
  async cutAll(refuseMs: number): Promise<void> {
    await Promise.all([...this.agents.map((a) => a.cut(refuseMs)), ...this.controllers.map((c) => c.cut(refuseMs))]);
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop()));
    for (const c of this.controllers.splice(0)) this.#stopping.push(c.kill());
    await Promise.all(this.#stopping);
  }

  /** Removes what the world registered: the APNodeStates and the core Nodes (a shared cluster outlives the soak). */
  async unregister(): Promise<void> {
    const clients = operatorClients(this.options.kubeConfig);
    const core = this.options.kubeConfig.makeApiClient(k8s.CoreV1Api);
    for (const n of this.options.nodes) {
      await clients.nodeStates.delete(n.name).catch(() => undefined);
      await core.deleteNode({ name: n.name }).catch(() => undefined);
    }
  }
}
