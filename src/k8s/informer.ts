// A shared informer over client-node's ListWatch: a local cache kept current by list+watch,
// event handlers meant only to enqueue keys, a synced flag, and restarts with backoff.
//
// client-node 1.4's ListWatch re-watches when a watch ends and relists on 410 Gone, but any
// other error (API server down, 403, a reset connection) stops it for good: it reports the
// error once and waits for start(). This wrapper restarts it with exponential backoff; the
// restart resumes from the last resourceVersion (or relists, on 410).
//
// Cached objects carry no metadata.managedFields: the server-side-apply bookkeeping is often
// larger than the rest of a small object, nothing reads it from a cache, and ListWatch keeps a
// second reference to every object, so it is dropped from each listed and watched object
// before ListWatch (or this cache) stores it.
import * as k8s from '@kubernetes/client-node';
import type { ObjectMeta } from '../api/types.js';
import { logger, type Logger } from '../log.js';
import { realClock, type Clock, type Timer } from './clock.js';
import {
  describeError,
  getJson,
  type CustomObject,
  type CustomObjectList,
  type CustomResourceClient,
  type ListOptions,
} from './client.js';
import { objectKey } from './keys.js';

/** Where an informer lists and watches. */
export interface ListSource<T> {
  /** Watch path, e.g. /apis/ap.s390x.io/v1alpha1/apnodestates. */
  path: string;
  list(): Promise<CustomObjectList<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** What it lists, for log lines. */
  what: string;
}

/** A custom resource, across all namespaces (or one), optionally filtered by selectors. */
export function customResourceSource<T extends CustomObject>(
  client: CustomResourceClient<T>,
  options: ListOptions = {},
): ListSource<T> {
  return {
    path: client.path(options.namespace),
    list: () => client.list(options),
    labelSelector: options.labelSelector,
    fieldSelector: options.fieldSelector,
    what: client.type.plural,
  };
}

/** A core Node as the API server sends it (times are strings, unlike client-node's V1Node). */
export interface NodeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: { unschedulable?: boolean; taints?: Array<{ key: string; value?: string; effect: string }> };
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
}

/**
 * Core Nodes. Listed as raw JSON: CoreV1Api.listNode decodes times into Dates while watch
 * events carry strings, and one cache must not hold both shapes.
 */
export function nodeSource(
  kc: k8s.KubeConfig,
  options: { labelSelector?: string; fieldSelector?: string } = {},
): ListSource<NodeObject> {
  const query = new URLSearchParams();
  if (options.labelSelector) query.set('labelSelector', options.labelSelector);
  if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector);
  const suffix = query.toString() ? `?${query}` : '';
  return {
    path: '/api/v1/nodes',
    list: async () => {
      const list = await getJson<CustomObjectList<NodeObject>>(kc, `/api/v1/nodes${suffix}`);
      // Items of a built-in list come without apiVersion/kind; watch events have them.
      list.items = (list.items ?? []).map((n) => ({ apiVersion: 'v1', kind: 'Node', ...n }));
      return list;
    },
    labelSelector: options.labelSelector,
    fieldSelector: options.fieldSelector,
    what: 'nodes',
  };
}

/**
 * Drops metadata.managedFields from a listed or watched object, in place (the object is fresh
 * from JSON.parse and not yet shared), and returns it.
 */
export function withoutManagedFields<T>(obj: T): T {
  const meta = (obj as { metadata?: { managedFields?: unknown } } | null | undefined)?.metadata;
  if (meta && typeof meta === 'object' && 'managedFields' in meta) delete meta.managedFields;
  return obj;
}

/** Event handlers. Keep them to enqueueing keys: they run inside the watch loop. */
export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(old: T, obj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions {
  /** For log lines; defaults to the source's resource. */
  name?: string;
  /** Restart delays after errors: initialMs doubling to maxMs (default 200 ms … 30 s). */
  restartBackoff?: { initialMs?: number; maxMs?: number };
  clock?: Clock;
  log?: Logger;
}

/**
 * client-node's ListWatch.stop() only aborts a watch that is already connected; one still
 * connecting (stop() right after the list) would stay open for good and keep the process
 * alive. This Watch remembers its requests so that closing aborts those too. It also strips
 * managedFields from every watched object before ListWatch sees it.
 */
class AbortableWatch extends k8s.Watch {
  private readonly open = new Set<AbortController>();
  private closed = false;

  override async watch(...[path, params, callback, done]: Parameters<k8s.Watch['watch']>): Promise<AbortController> {
    let controller: AbortController | undefined;
    let finished = false;
    const strip: typeof callback = (phase, obj, watchObj) => callback(phase, withoutManagedFields(obj), watchObj);
    controller = await super.watch(path, params, strip, (err) => {
      finished = true;
      if (controller) this.open.delete(controller);
      done(err);
    });
    if (this.closed) controller.abort();
    else if (!finished) this.open.add(controller);
    return controller;
  }

  close(): void {
    this.closed = true;
    for (const c of this.open) c.abort();
    this.open.clear();
  }

  reopen(): void {
    this.closed = false;
  }
}

// ListWatch is typed for client-node's decoded objects (Date times); it only reads
// metadata.name/namespace/resourceVersion, so it holds our wire-JSON objects unchanged.
type Listed = k8s.KubernetesObject;

export class Informer<T extends CustomObject> {
  readonly name: string;
  private readonly listWatch: k8s.ListWatch<Listed>;
  private readonly watch: AbortableWatch;
  private readonly objects = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly syncWaiters: Array<() => void> = [];
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private synced = false;
  private running = false;
  private failures = 0;
  private restartCount = 0;
  private lastStart = 0;
  private restartTimer: Timer | undefined;
  private lastErrorText: string | undefined;

  constructor(kc: k8s.KubeConfig, source: ListSource<T>, options: InformerOptions = {}) {
    this.name = options.name ?? source.what;
    this.clock = options.clock ?? realClock;
    this.log = options.log ?? logger('informer', { informer: this.name });
    this.initialBackoffMs = options.restartBackoff?.initialMs ?? 200;
    this.maxBackoffMs = options.restartBackoff?.maxMs ?? 30_000;
    const list = async () => {
      const result = await source.list();
      this.failures = 0;
      for (const item of result.items ?? []) withoutManagedFields(item);
      // ListWatch applies the list synchronously right after this promise settles; by the
      // next macrotask the cache holds every listed object.
      if (!this.synced) setImmediate(() => this.markSynced());
      return result as unknown as k8s.KubernetesListObject<Listed>;
    };
    this.watch = new AbortableWatch(kc);
    this.listWatch = new k8s.ListWatch<Listed>(
      source.path,
      this.watch,
      list,
      false,
      source.labelSelector,
      source.fieldSelector,
    );
    this.listWatch.on(k8s.ADD, (obj) => this.applied(obj as T));
    this.listWatch.on(k8s.UPDATE, (obj) => this.applied(obj as T));
    this.listWatch.on(k8s.DELETE, (obj) => this.removed(obj as T));
    this.listWatch.on(k8s.ERROR, (err) => this.failed(err));
  }

  /** Adds handlers; objects already cached are replayed to `add`, as client-go does. */
  on(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
    for (const obj of this.objects.values()) this.call(() => handlers.add?.(obj));
  }

  /** Enqueues the key(s) of every added, changed or deleted object. */
  enqueueTo(queue: { add(key: string): void }, keysOf: (obj: T) => string[] = (obj) => [objectKey(obj)]): void {
    const enqueue = (obj: T) => {
      for (const key of keysOf(obj)) queue.add(key);
    };
    this.on({ add: enqueue, update: (_old, obj) => enqueue(obj), delete: enqueue });
  }

  /** Starts listing and watching in the background (returns at once). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.run();
  }

  /** Stops watching; the cache keeps its last contents. */
  async stop(): Promise<void> {
    this.running = false;
    this.restartTimer?.cancel();
    this.restartTimer = undefined;
    await this.listWatch.stop();
    this.watch.close();
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }

  /** True once the first list has been applied to the cache (stays true across restarts). */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves when synced; rejects after `timeoutMs` or when stopped before syncing. */
  waitForSync(timeoutMs = 60_000): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(() => {
        const i = this.syncWaiters.indexOf(done);
        if (i >= 0) this.syncWaiters.splice(i, 1);
        const cause = this.lastErrorText ? ` (last error: ${this.lastErrorText})` : '';
        reject(new Error(`informer ${this.name} did not sync within ${timeoutMs} ms${cause}`));
      }, timeoutMs);
      const done = () => {
        timer.cancel();
        if (this.synced) resolve();
        else reject(new Error(`informer ${this.name} stopped before it synced`));
      };
      this.syncWaiters.push(done);
    });
  }

  /** The cached object for a `namespace/name` (or `name`) key. Do not mutate it. */
  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  /** Every cached object (optionally of one namespace). Do not mutate them. */
  list(namespace?: string): T[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  keys(): string[] {
    return [...this.objects.keys()];
  }

  /** How often the informer was restarted after an error (for a metric or a test). */
  restarts(): number {
    return this.restartCount;
  }

  private run(): void {
    this.lastStart = this.clock.now();
    this.watch.reopen();
    this.listWatch.start().catch((err) => this.failed(err));
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.log.debug('informer synced', { objects: this.objects.size });
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }

  private failed(err: unknown): void {
    if (!this.running) return; // stop() aborts the watch, which reports an error
    if (this.restartTimer) return;
    this.lastErrorText = describeError(err);
    // A watch that ran quietly for a while before failing starts the backoff over.
    if (this.clock.now() - this.lastStart > 2 * this.maxBackoffMs) this.failures = 0;
    const delay = Math.min(this.initialBackoffMs * 2 ** Math.min(this.failures, 30), this.maxBackoffMs);
    this.failures++;
    this.log.warn('list/watch failed; restarting', { error: this.lastErrorText, retryInMs: delay });
    this.restartTimer = this.clock.setTimer(() => {
      this.restartTimer = undefined;
      if (!this.running) return;
      this.restartCount++;
      this.run();
    }, delay);
  }

  private applied(obj: T): void {
    this.failures = 0;
    const key = objectKey(obj);
    const old = this.objects.get(key);
    this.objects.set(key, obj);
    for (const h of this.handlers) {
      this.call(() => (old ? h.update?.(old, obj) : h.add?.(obj)));
    }
  }

  private removed(obj: T): void {
    this.objects.delete(objectKey(obj));
    for (const h of this.handlers) this.call(() => h.delete?.(obj));
  }

  /** A throwing handler must not break ListWatch's loop (it would stop without a word). */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('informer handler threw', { error: describeError(err) });
    }
  }
}
