// A shared informer: a local cache kept current by list+watch, event handlers meant only to
// enqueue keys, a synced flag, and restarts with backoff.
//
// It lists and watches as client-node 1.4's ListWatch does — a list fills the cache (and
// deletes what is no longer listed), a watch from the list's resourceVersion follows it, a
// watch that ends is started again from the last resourceVersion seen, and 410 Gone (as a
// status or as an ERROR event) means list again — but on the project's own requests (rest.ts),
// so that the process need not load client-node (see kubeconfig.ts). Where ListWatch stops for
// good after any other error (API server down, 403, a reset connection), this informer
// restarts with exponential backoff; the restart resumes from the last resourceVersion.
//
// Cached objects carry no metadata.managedFields: the server-side-apply bookkeeping is often
// larger than the rest of a small object and nothing reads it from a cache, so it is dropped
// from each listed and watched object before the cache stores it.
import type { ObjectMeta } from '../api/types.js';
import { logger, type Logger } from '../log.js';
import { realClock, type Clock, type Timer } from './clock.js';
import {
  describeError,
  getJson,
  statusCode,
  type CustomObject,
  type CustomObjectList,
  type CustomResourceClient,
  type ListOptions,
} from './client.js';
import { objectKey } from './keys.js';
import type { ApiConfig } from './kubeconfig.js';
import { watchRequest } from './rest.js';

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
  kc: ApiConfig,
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

export class Informer<T extends CustomObject> {
  readonly name: string;
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
  /** Where the next watch starts; empty: list first. */
  private resourceVersion = '';
  /** Counts starts and stops: a list or watch of an earlier round reports nothing. */
  private round = 0;
  private watch: AbortController | undefined;

  constructor(
    private readonly kc: ApiConfig,
    private readonly source: ListSource<T>,
    options: InformerOptions = {},
  ) {
    this.name = options.name ?? source.what;
    this.clock = options.clock ?? realClock;
    this.log = options.log ?? logger('informer', { informer: this.name });
    this.initialBackoffMs = options.restartBackoff?.initialMs ?? 200;
    this.maxBackoffMs = options.restartBackoff?.maxMs ?? 30_000;
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
    this.round++;
    this.restartTimer?.cancel();
    this.restartTimer = undefined;
    this.watch?.abort();
    this.watch = undefined;
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
    void this.listAndWatch(++this.round);
  }

  /** Lists (unless a resourceVersion to resume from is known), then watches from there. */
  private async listAndWatch(round: number): Promise<void> {
    try {
      if (!this.resourceVersion) {
        const list = await this.source.list();
        if (round !== this.round) return;
        this.failures = 0;
        this.replaceAll(list.items ?? []);
        this.resourceVersion = list.metadata?.resourceVersion ?? '';
        this.markSynced();
      }
      const query = {
        resourceVersion: this.resourceVersion,
        labelSelector: this.source.labelSelector,
        fieldSelector: this.source.fieldSelector,
      };
      const watch = await watchRequest(
        this.kc,
        this.source.path,
        query,
        (type, obj) => {
          if (round === this.round) this.watched(type, obj as T);
        },
        (err) => {
          if (round === this.round) this.watchEnded(round, err);
        },
      );
      if (round === this.round) this.watch = watch;
      else watch.abort();
    } catch (err) {
      if (round === this.round) this.failed(err);
    }
  }

  /** A watch ended: watch again from where it was (list again after 410 Gone), or back off. */
  private watchEnded(round: number, err: unknown): void {
    this.watch = undefined;
    if (err && statusCode(err) === 410) this.resourceVersion = '';
    else if (err) return this.failed(err);
    void this.listAndWatch(round);
  }

  private watched(type: string, obj: T): void {
    switch (type) {
      case 'ERROR':
        // The server ends the watch after this; 410 Gone: the resourceVersion is too old.
        if ((obj as { code?: unknown } | undefined)?.code === 410) this.resourceVersion = '';
        return;
      case 'ADDED':
      case 'MODIFIED':
        this.applied(withoutManagedFields(obj));
        break;
      case 'DELETED':
        this.removed(withoutManagedFields(obj));
        break;
      // BOOKMARK: only the resourceVersion moves.
    }
    this.resourceVersion = obj?.metadata?.resourceVersion ?? '';
  }

  /** A (re)list: what is no longer listed is deleted, the rest added or updated. */
  private replaceAll(items: T[]): void {
    const listed = new Set<string>();
    for (const item of items) listed.add(objectKey(item));
    for (const [key, obj] of this.objects) {
      if (listed.has(key)) continue;
      this.objects.delete(key);
      for (const h of this.handlers) this.call(() => h.delete?.(obj));
    }
    for (const item of items) this.applied(withoutManagedFields(item));
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.log.debug('informer synced', { objects: this.objects.size });
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }

  private failed(err: unknown): void {
    if (!this.running) return;
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

  /** Adds or replaces; the same resourceVersion again (a relist of an unchanged object) is no change. */
  private applied(obj: T): void {
    const key = objectKey(obj);
    const old = this.objects.get(key);
    const version = old?.metadata?.resourceVersion;
    if (old && version !== undefined && version !== null && version === obj.metadata?.resourceVersion) return;
    this.failures = 0;
    this.objects.set(key, obj);
    for (const h of this.handlers) {
      this.call(() => (old ? h.update?.(old, obj) : h.add?.(obj)));
    }
  }

  /** Removes; handlers see the object as the deletion reported it (only if it was cached). */
  private removed(obj: T): void {
    const key = objectKey(obj);
    if (!this.objects.delete(key)) return;
    for (const h of this.handlers) this.call(() => h.delete?.(obj));
  }

  /** A throwing handler must not break the watch loop. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('informer handler threw', { error: describeError(err) });
    }
  }
}
