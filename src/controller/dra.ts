// The controller's DRA side, runnable next to the main Controller: a node queue (each node's
// ResourceSlices, dra-publish.ts) and a claim queue (each APQNClaim's ResourceClaim,
// dra-claims.ts). It shares the Controller's informers when given them and adds two of its own
// (this driver's ResourceSlices; the ResourceClaims it labelled). Reconcilers run only while
// `isLeading()` says so; the informers stay warm either way. Node events are routed in O(1)
// through its own indexes by node, and only when they can change a pool (dra-routing.ts):
// agent heartbeats, Node status updates and reservation changes that leave a device as it was
// enqueue nothing.
import type { ApiConfig } from '../k8s/kubeconfig.js';
import type { APNodeState, APQNClaim, APQNReservation } from '../api/types.js';
import {
  DRA_DRIVER,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  RESOURCE_API_VERSION,
  ResourceClaimType,
  ResourceSliceType,
  type ResourceClaim,
  type ResourceSlice,
} from '../api/dra.js';
import { ClaimType, CustomResourceClient, NodeStateType, ReservationType, getJson, isNotFound } from '../k8s/client.js';
import { Informer, customResourceSource, nodeSource, type NodeObject } from '../k8s/informer.js';
import { WorkQueue, runWorkers } from '../k8s/workqueue.js';
import { logger, type Logger } from '../log.js';
import type { Scope } from './context.js';
import { reconcileClaimDra, type ClaimDraContext } from './dra-claims.js';
import { reconcileNodeSlices, type SlicePublisherContext } from './dra-publish.js';
import { ByNode, nodeMatters, nodeStateMatters, nodesToRepublish } from './dra-routing.js';
import { DEFAULT_PUBLISH_WINDOW_MS, PublishWindow } from './dra-window.js';

type Sliced = ResourceSlice & { metadata?: { name?: string } };
type Claimed = ResourceClaim & { metadata?: { name?: string; namespace?: string } };

/** The informers the main Controller already runs (Controller.caches). */
export interface SharedCaches {
  reservations: Informer<APQNReservation>;
  claims: Informer<APQNClaim>;
  nodeStates: Informer<APNodeState>;
  nodes: Informer<NodeObject>;
}

export interface DraControllerOptions {
  kubeConfig: ApiConfig;
  /** Share these informers (started by their owner); without them the DRA side runs its own. */
  caches?: SharedCaches;
  /** Reconcile only while this returns true (the main Controller's isLeading); default always. */
  isLeading?: () => boolean;
  /** How often leadership is looked at (default 1000 ms). */
  leaderPollMs?: number;
  scope?: Scope;
  log?: Logger;
  workers?: number;
  now?: () => number;
  /** Observes ResourceSlice writes (tests count them). */
  onSliceWrite?: SlicePublisherContext['onWrite'];
  /** A node's pool is written at most once per this many ms (default 300; dra-window.ts). */
  publishWindowMs?: number;
}

export interface DraStats {
  syncs: { nodes: number; claims: number };
  leading: boolean;
}

export class DraController {
  readonly stats: DraStats = { syncs: { nodes: 0, claims: 0 }, leading: false };
  readonly slices: Informer<Sliced>;
  readonly resourceClaims: Informer<Claimed>;
  private readonly caches: SharedCaches;
  private readonly ownCaches: boolean;
  private readonly scope: Scope;
  private readonly log: Logger;
  private readonly publisher: SlicePublisherContext;
  private readonly claimCtx: ClaimDraContext;
  /** Reservations by status.nodeName and this driver's slices by spec.nodeName (from events). */
  private readonly reservationsByNode = new ByNode<APQNReservation>((r) => r.status?.nodeName);
  private readonly slicesByNode = new ByNode<Sliced>((s) => s.spec?.nodeName);
  private queues: { nodes: WorkQueue; claims: WorkQueue } | undefined;
  private workersDone: Promise<void> | undefined;
  private leaderTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: DraControllerOptions) {
    const kc = options.kubeConfig;
    this.scope = options.scope ?? {};
    this.log = options.log ?? logger('controller-dra');
    const informerLog = (name: string) => this.log.child({ informer: name });
    const sliceClient = new CustomResourceClient<ResourceSlice>(kc, ResourceSliceType);
    const resourceClaimClient = new CustomResourceClient<ResourceClaim>(kc, ResourceClaimType);
    this.ownCaches = !options.caches;
    this.caches = options.caches ?? {
      reservations: new Informer<APQNReservation>(
        kc,
        customResourceSource(new CustomResourceClient<APQNReservation>(kc, ReservationType), { namespace: this.scope.namespace }),
        { log: informerLog('reservations') },
      ),
      claims: new Informer<APQNClaim>(kc, customResourceSource(new CustomResourceClient<APQNClaim>(kc, ClaimType), { namespace: this.scope.namespace }), {
        log: informerLog('claims'),
      }),
      nodeStates: new Informer<APNodeState>(kc, customResourceSource(new CustomResourceClient<APNodeState>(kc, NodeStateType)), {
        log: informerLog('apnodestates'),
      }),
      nodes: new Informer<NodeObject>(kc, nodeSource(kc), { log: informerLog('nodes') }),
    };
    this.slices = new Informer<Sliced>(kc, customResourceSource(sliceClient, { fieldSelector: `spec.driver=${DRA_DRIVER}` }), {
      log: informerLog('resourceslices'),
    });
    this.resourceClaims = new Informer<Claimed>(
      kc,
      customResourceSource(resourceClaimClient, { namespace: this.scope.namespace, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` }),
      { log: informerLog('resourceclaims') },
    );
    this.publisher = {
      reservationsOf: (node) => this.reservationsByNode.of(node),
      nodeStates: this.caches.nodeStates,
      nodes: this.caches.nodes,
      slicesOf: (node) => this.slicesByNode.of(node),
      sliceClient,
      window: new PublishWindow(options.publishWindowMs ?? DEFAULT_PUBLISH_WINDOW_MS, options.now),
      scope: this.scope,
      log: this.log,
      ...(options.onSliceWrite ? { onWrite: options.onSliceWrite } : {}),
    };
    this.claimCtx = {
      claims: this.caches.claims,
      resourceClaims: this.resourceClaims,
      claimClient: new CustomResourceClient<APQNClaim>(kc, ClaimType),
      resourceClaimClient,
      scope: this.scope,
      log: this.log,
      now: options.now ?? (() => Date.now()),
    };
    this.wire();
  }

  private node(name: string | undefined): void {
    if (!name || (this.scope.nodes && !this.scope.nodes(name))) return;
    this.queues?.nodes.add(name);
  }

  private claim(obj: { metadata?: { namespace?: string; name?: string } }): void {
    if (this.scope.namespace && obj.metadata?.namespace !== this.scope.namespace) return;
    this.queues?.claims.add(`${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`);
  }

  /**
   * Informer events keep the indexes by node and enqueue keys — only the nodes whose pool the
   * change can alter, without listing anything.
   */
  private wire(): void {
    const inScope = (r: APQNReservation) => !this.scope.namespace || r.metadata.namespace === this.scope.namespace;
    const republish = (old: APQNReservation | undefined, r: APQNReservation | undefined) => {
      for (const node of nodesToRepublish(old, r)) this.node(node);
    };
    this.caches.reservations.on({
      add: (r) => {
        if (!inScope(r)) return;
        this.reservationsByNode.set(r);
        republish(undefined, r);
      },
      update: (old, r) => {
        if (!inScope(r)) return;
        this.reservationsByNode.set(r);
        republish(old, r);
      },
      delete: (r) => {
        if (!inScope(r)) return;
        this.reservationsByNode.delete(r);
        republish(r, undefined);
      },
    });
    const byName = (o: { metadata?: { name?: string } }) => this.node(o.metadata?.name);
    this.caches.nodeStates.on({ add: byName, update: (old, s) => nodeStateMatters(old, s) && byName(s), delete: byName });
    this.caches.nodes.on({ add: byName, update: (old, n) => nodeMatters(old, n) && byName(n), delete: byName });
    const slice = (s: Sliced) => this.node(s.spec?.nodeName);
    this.slices.on({
      add: (s) => (this.slicesByNode.set(s), slice(s)),
      update: (old, s) => (this.slicesByNode.set(s), slice(old), slice(s)),
      delete: (s) => (this.slicesByNode.delete(s), slice(s)),
    });
    const claim = (c: { metadata?: { namespace?: string; name?: string } }) => this.claim(c);
    this.caches.claims.on({ add: claim, update: (_o, c) => claim(c), delete: claim });
    this.resourceClaims.on({ add: claim, update: (_o, c) => claim(c), delete: claim });
  }

  private informers(): Array<Informer<never>> {
    const own = [this.slices, this.resourceClaims] as Array<Informer<never>>;
    return this.ownCaches ? [...own, ...(Object.values(this.caches) as Array<Informer<never>>)] : own;
  }

  /** Starts the informers it owns, waits for every cache it reads, then follows leadership. */
  async start(syncTimeoutMs = 60_000): Promise<void> {
    for (const i of this.informers()) i.start();
    const all = [this.slices, this.resourceClaims, ...Object.values(this.caches)] as Array<Informer<never>>;
    await Promise.all(all.map((i) => i.waitForSync(syncTimeoutMs)));
    const isLeading = this.options.isLeading ?? (() => true);
    const follow = () => {
      if (this.stopped) return;
      const leading = isLeading();
      if (leading && !this.queues) this.startReconciling();
      else if (!leading && this.queues) void this.stopReconciling();
    };
    follow();
    this.leaderTimer = setInterval(follow, this.options.leaderPollMs ?? 1000);
    this.leaderTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.leaderTimer) clearInterval(this.leaderTimer);
    await this.stopReconciling();
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  private startReconciling(): void {
    const queues = { nodes: new WorkQueue({ name: 'dra-nodes' }), claims: new WorkQueue({ name: 'dra-claims' }) };
    this.queues = queues;
    this.stats.leading = true;
    const workers = this.options.workers ?? 2;
    const counted = (which: keyof DraStats['syncs'], fn: (key: string) => Promise<void | { requeueAfterMs: number }>) => async (key: string) => {
      if (this.queues !== queues) return undefined; // stopped leading
      this.stats.syncs[which]++;
      return fn(key);
    };
    this.workersDone = Promise.all([
      runWorkers(queues.nodes, workers, counted('nodes', (k) => reconcileNodeSlices(k, this.publisher)), this.log.child({ queue: 'dra-nodes' })),
      runWorkers(queues.claims, workers, counted('claims', (k) => reconcileClaimDra(k, this.claimCtx)), this.log.child({ queue: 'dra-claims' })),
    ]).then(() => undefined);
    // Everything once: nodes with reservations, agents or slices; every claim.
    for (const node of this.reservationsByNode.nodes()) this.node(node);
    for (const s of this.caches.nodeStates.list()) this.node(s.metadata?.name);
    for (const node of this.slicesByNode.nodes()) this.node(node);
    for (const c of this.caches.claims.list(this.scope.namespace)) this.claim(c);
    for (const c of this.resourceClaims.list(this.scope.namespace)) this.claim(c);
    this.log.debug('DRA reconcilers started', { claims: this.caches.claims.list().length });
  }

  private async stopReconciling(): Promise<void> {
    const queues = this.queues;
    if (!queues) return;
    this.queues = undefined;
    this.stats.leading = false;
    queues.nodes.shutDown();
    queues.claims.shutDown();
    await this.workersDone;
  }
}

/** Whether the API server serves resource.k8s.io/v1 (Kubernetes ≥ 1.34, or 1.33 with it enabled). */
export async function draApiServed(kc: ApiConfig): Promise<boolean> {
  try {
    await getJson(kc, `/apis/${RESOURCE_API_VERSION}`);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/**
 * Starts the DRA side; pass the main Controller's caches and isLeading to share them. Without
 * resource.k8s.io/v1 on the server it logs why and returns a DRA side that does nothing.
 */
export async function startDraController(options: DraControllerOptions): Promise<Pick<DraController, 'stop' | 'stats'>> {
  if (!(await draApiServed(options.kubeConfig))) {
    (options.log ?? logger('controller-dra')).warn(
      `the API server does not serve ${RESOURCE_API_VERSION}: no DRA devices or ResourceClaims; KubeVirt guests cannot use claims`,
    );
    return { stop: async () => undefined, stats: { syncs: { nodes: 0, claims: 0 }, leading: false } };
  }
  const dra = new DraController(options);
  await dra.start();
  return dra;
}
