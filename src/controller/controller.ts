// The controller process: informers on APQNReservation, APQNClaim, APNodeState and Node that
// feed the incremental decision cache and enqueue keys; three work queues (reservations, node
// specs, claims) with level-based reconcilers; one staleness timer per node; and, with leader
// election, reconcilers that run only while this replica holds the Lease. The caches (and the
// decision cache) stay warm while not leading, so a new leader starts from a full view.
import type { ApiConfig } from '../k8s/kubeconfig.js';
import type { APNodeState, APQNClaim, APQNReservation } from '../api/types.js';
import { operatorClients } from '../k8s/client.js';
import { realClock } from '../k8s/clock.js';
import { Informer, customResourceSource, nodeSource, type NodeObject } from '../k8s/informer.js';
import { WorkQueue, runWorkers } from '../k8s/workqueue.js';
import { logger, type Logger } from '../log.js';
import { reconcileClaim } from './claims.js';
import { DEFAULT_HEARTBEAT_STALE_MS } from './cluster-view.js';
import type { Caches, ControllerContext, EventSink, Scope } from './context.js';
import { DecisionCache } from './decision-cache.js';
import { reconcileNode } from './nodes.js';
import { reconcileReservation } from './reservations.js';
import { enqueueAll, onClaim, onNode, onNodeState, onReservation, type Queues, type Wiring } from './wiring.js';

/** Reconciles in flight per queue: each is mostly waiting on the API server, so many overlap. */
const DEFAULT_WORKERS = { reservations: 16, nodes: 8, claims: 4 };

export interface Leadership {
  /** Campaigns until stopped; calls onStart when this replica leads, onStop (awaited) when it stops leading. */
  start(callbacks: { onStart(): void; onStop(): Promise<void> }): void;
  stop(): Promise<void>;
}

export interface ControllerOptions {
  kubeConfig: ApiConfig;
  log?: Logger;
  /** Reconcile only while holding the Lease (needs `leadership`). Without it, always. */
  leadership?: Leadership;
  events?: EventSink;
  heartbeatStaleMs?: number;
  scope?: Scope;
  /** Workers for the reservation queue (default 16; node specs 8, claims 4 — a key is never worked on twice at once). */
  workers?: number;
}

export interface ControllerStats {
  syncs: { reservations: number; nodes: number; claims: number };
  failures: { reservations: number; nodes: number; claims: number };
  leading: boolean;
}

interface Run {
  queues: { reservations: WorkQueue; nodes: WorkQueue; claims: WorkQueue };
  done: Promise<void>;
  deactivate(): void;
}

const logSink = (log: Logger): EventSink => ({
  async emit(object, type, reason, message) {
    log.info('event', { object: `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`, type, reason, message });
  },
});

export class Controller {
  readonly caches: Caches;
  readonly stats: ControllerStats = {
    syncs: { reservations: 0, nodes: 0, claims: 0 },
    failures: { reservations: 0, nodes: 0, claims: 0 },
    leading: false,
  };
  private readonly ctx: ControllerContext;
  private readonly log: Logger;
  private run: Run | undefined;
  private stopping = false;
  private readonly staleTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly options: ControllerOptions) {
    const kc = options.kubeConfig;
    this.log = options.log ?? logger('controller');
    const clients = operatorClients(kc);
    const scope = options.scope ?? {};
    const informerLog = (name: string) => this.log.child({ informer: name });
    this.caches = {
      reservations: new Informer<APQNReservation>(kc, customResourceSource(clients.reservations, { namespace: scope.namespace }), {
        log: informerLog('reservations'),
      }),
      claims: new Informer<APQNClaim>(kc, customResourceSource(clients.claims, { namespace: scope.namespace }), { log: informerLog('claims') }),
      nodeStates: new Informer<APNodeState>(kc, customResourceSource(clients.nodeStates), { log: informerLog('apnodestates') }),
      nodes: new Informer<NodeObject>(kc, nodeSource(kc), { log: informerLog('nodes') }),
    };
    const queues: Queues = {
      reservations: { add: (k) => this.run?.queues.reservations.add(k) },
      nodes: { add: (k) => this.run?.queues.nodes.add(k) },
      claims: { add: (k) => this.run?.queues.claims.add(k) },
    };
    const heartbeatStaleMs = options.heartbeatStaleMs ?? DEFAULT_HEARTBEAT_STALE_MS;
    const decisions = new DecisionCache((changed) => {
      for (const key of changed.reservations) queues.reservations.add(key);
      for (const node of changed.nodes) queues.nodes.add(node);
    });
    this.ctx = {
      clients,
      caches: this.caches,
      decisions,
      enqueue: { reservation: (k) => queues.reservations.add(k), node: (n) => n && queues.nodes.add(n), claim: (k) => queues.claims.add(k) },
      events: options.events ?? logSink(this.log),
      log: this.log,
      now: () => realClock.now(),
      heartbeatStaleMs,
      scope,
      nodeWrites: new Map(),
      progress: new Map(),
      ownStatusWrites: new Map(),
      fannedOut: new Map(),
    };
    const wiring: Wiring = {
      decisions,
      scope,
      queues,
      now: () => realClock.now(),
      heartbeatStaleMs,
      heartbeat: (node, at) => this.watchStaleness(node, at + heartbeatStaleMs),
      ownStatusWrite: (key, resourceVersion) => {
        const mine = this.ctx.ownStatusWrites.get(key);
        if (mine === undefined) return false;
        this.ctx.ownStatusWrites.delete(key);
        return mine === resourceVersion;
      },
    };
    const { caches } = this;
    caches.reservations.on({
      add: (r) => onReservation(wiring, undefined, r),
      update: (old, r) => onReservation(wiring, old, r),
      delete: (r) => onReservation(wiring, undefined, r, true),
    });
    caches.claims.on({
      add: (c) => onClaim(wiring, undefined, c),
      update: (old, c) => onClaim(wiring, old, c),
      delete: (c) => onClaim(wiring, undefined, c, true),
    });
    caches.nodeStates.on({
      add: (s) => onNodeState(wiring, undefined, s),
      update: (old, s) => onNodeState(wiring, old, s),
      delete: (s) => onNodeState(wiring, undefined, s, true),
    });
    caches.nodes.on({
      add: (n) => onNode(wiring, undefined, n),
      update: (old, n) => onNode(wiring, old, n),
      delete: (n) => onNode(wiring, undefined, n, true),
    });
  }

  /** One timer per node: when its agent's heartbeat goes stale, the node looks again (its reservations turn Unknown). */
  private watchStaleness(node: string, staleAt: number): void {
    const existing = this.staleTimers.get(node);
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.staleTimers.delete(node);
      this.run?.queues.nodes.add(node);
    }, Math.max(0, staleAt - realClock.now()) + 100);
    timer.unref();
    this.staleTimers.set(node, timer);
  }

  /** Starts the informers, waits for them to sync, then leads (or campaigns to). */
  async start(syncTimeoutMs = 60_000): Promise<void> {
    const informers = Object.values(this.caches) as Array<Informer<never>>;
    for (const i of informers) i.start();
    await Promise.all(informers.map((i) => i.waitForSync(syncTimeoutMs)));
    this.log.info('caches synced', {
      reservations: this.caches.reservations.list().length,
      claims: this.caches.claims.list().length,
      nodeStates: this.caches.nodeStates.list().length,
    });
    if (this.options.leadership) {
      this.options.leadership.start({ onStart: () => this.startReconciling(), onStop: () => this.stopReconciling() });
    } else {
      this.startReconciling();
    }
  }

  isLeading(): boolean {
    return this.stats.leading;
  }

  /** Called after each reconcile with its queue, duration and outcome (the metrics' histogram). */
  onSync: ((queue: keyof ControllerStats['syncs'], seconds: number, failed: boolean) => void) | undefined;

  /** Keys waiting in each work queue, and keys waiting for a delayed add (zeros while not leading). */
  queueDepths(): Record<keyof ControllerStats['syncs'], { depth: number; delayed: number }> {
    const of = (q: WorkQueue | undefined) => ({ depth: q?.len() ?? 0, delayed: q?.delayedLen() ?? 0 });
    const queues = this.run?.queues;
    return { reservations: of(queues?.reservations), nodes: of(queues?.nodes), claims: of(queues?.claims) };
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.options.leadership) await this.options.leadership.stop();
    await this.stopReconciling();
    for (const timer of this.staleTimers.values()) clearTimeout(timer);
    this.staleTimers.clear();
    await Promise.all((Object.values(this.caches) as Array<Informer<never>>).map((i) => i.stop()));
  }

  private startReconciling(): void {
    if (this.run || this.stopping) return;
    this.log.info('reconciling');
    this.stats.leading = true;
    const queues = {
      reservations: new WorkQueue({ name: 'reservations' }),
      nodes: new WorkQueue({ name: 'nodes' }),
      claims: new WorkQueue({ name: 'claims' }),
    };
    const workers = { ...DEFAULT_WORKERS, ...(this.options.workers ? { reservations: this.options.workers } : {}) };
    let active = true;
    const counted =
      (which: keyof ControllerStats['syncs'], fn: (key: string, ctx: ControllerContext) => Promise<unknown>) =>
      async (key: string) => {
        if (!active || this.run?.queues !== queues) return undefined; // stopped leading: leave it to the next leader
        this.stats.syncs[which]++;
        const started = performance.now();
        let failed = false;
        try {
          return (await fn(key, this.ctx)) as { requeueAfterMs: number } | undefined;
        } catch (err) {
          this.stats.failures[which]++;
          failed = true;
          throw err;
        } finally {
          this.onSync?.(which, (performance.now() - started) / 1000, failed);
        }
      };
    const done = Promise.all([
      runWorkers(queues.reservations, workers.reservations, counted('reservations', reconcileReservation), this.log.child({ queue: 'reservations' })),
      runWorkers(queues.nodes, workers.nodes, counted('nodes', reconcileNode), this.log.child({ queue: 'nodes' })),
      runWorkers(queues.claims, workers.claims, counted('claims', reconcileClaim), this.log.child({ queue: 'claims' })),
    ]).then(() => undefined);
    this.run = { queues, done, deactivate: () => (active = false) };
    enqueueAll(this.caches, this.ctx.scope, {
      reservations: queues.reservations,
      nodes: queues.nodes,
      claims: queues.claims,
    });
  }

  /** Stops taking keys; waits for the syncs in progress to finish. */
  private async stopReconciling(): Promise<void> {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    run.deactivate();
    this.stats.leading = false;
    this.log.info('stopped reconciling');
    for (const q of Object.values(run.queues)) q.shutDown();
    // Keys still queued are handed out after shutDown; drop them: the next leader re-reads everything.
    await run.done;
  }
}
