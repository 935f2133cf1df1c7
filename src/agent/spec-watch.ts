// The agent's view of its own APNodeState (named after the node): created with an empty spec
// when missing, then kept current by an informer on that one name (field selector
// metadata.name), so a controller's spec write reaches the agent within a watch event.
//
// What the agent applies is always a whole object as the API server stored it (a list item or
// a watch event); nothing is ever merged from parts. While the API server is unreachable the
// last object seen stays current — the controller cannot give its queues to anyone else before
// this agent reports them released, so applying that spec cannot hurt another reservation.
import type { ApiConfig } from '../k8s/kubeconfig.js';
import { API_VERSION, type APNodeState } from '../api/types.js';
import { realClock, sleep, type Clock } from '../k8s/clock.js';
import { describeError, isAlreadyExists, type CustomResourceClient } from '../k8s/client.js';
import { Informer, customResourceSource } from '../k8s/informer.js';
import { logger, type Logger } from '../log.js';

export interface NodeSpecWatchOptions {
  kubeConfig: ApiConfig;
  client: CustomResourceClient<APNodeState>;
  nodeName: string;
  clock?: Clock;
  log?: Logger;
  /** Retry delays while the API server cannot be reached (default 0.5 … 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
}

export type SpecChange = 'updated' | 'deleted';

export class NodeSpecWatch {
  readonly #client: CustomResourceClient<APNodeState>;
  readonly #name: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #informer: Informer<APNodeState>;
  readonly #backoff: { initialMs: number; maxMs: number };
  readonly #listeners: Array<(change: SpecChange, object: APNodeState) => void> = [];
  readonly #abort = new AbortController();
  #current: APNodeState | undefined;
  #recreating: Promise<APNodeState | undefined> | undefined;

  constructor(options: NodeSpecWatchOptions) {
    this.#client = options.client;
    this.#name = options.nodeName;
    this.#clock = options.clock ?? realClock;
    this.#log = options.log ?? logger('agent', { node: options.nodeName, object: `APNodeState/${options.nodeName}` });
    this.#backoff = { initialMs: options.backoff?.initialMs ?? 500, maxMs: options.backoff?.maxMs ?? 30_000 };
    this.#informer = new Informer(
      options.kubeConfig,
      customResourceSource(options.client, { fieldSelector: `metadata.name=${options.nodeName}` }),
      { name: `apnodestate/${options.nodeName}`, clock: this.#clock, log: this.#log },
    );
    this.#informer.on({
      add: (obj) => this.#seen(obj),
      update: (_old, obj) => this.#seen(obj),
      delete: (obj) => this.#deleted(obj),
    });
  }

  /** Called with every new copy of the object (and on deletion, with the last copy). */
  onChange(listener: (change: SpecChange, object: APNodeState) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Reads the object, creating it with an empty spec when missing; retries with backoff while
   * the API server cannot be reached. Resolves undefined only when stopped first.
   */
  async ensure(): Promise<APNodeState | undefined> {
    let delay = this.#backoff.initialMs;
    while (!this.#abort.signal.aborted) {
      try {
        const object = await this.#getOrCreate();
        this.#seen(object);
        return object;
      } catch (err) {
        this.#log.warn('cannot read or create the APNodeState; retrying', { error: describeError(err), retryInMs: delay });
        await sleep(this.#clock, delay, this.#abort.signal);
        delay = Math.min(delay * 2, this.#backoff.maxMs);
      }
    }
    return undefined;
  }

  /** Starts watching (after ensure()). */
  start(): void {
    this.#informer.start();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#informer.stop();
  }

  /** The newest whole object seen, or undefined before the first read. */
  current(): APNodeState | undefined {
    return this.#current;
  }

  /** The informer's restarts after watch errors (for tests and metrics). */
  restarts(): number {
    return this.#informer.restarts();
  }

  /** Recreates a deleted object (once at a time); the status writer calls this on a 404. */
  recreate(): Promise<APNodeState | undefined> {
    this.#recreating ??= this.ensure().finally(() => {
      this.#recreating = undefined;
    });
    return this.#recreating;
  }

  async #getOrCreate(): Promise<APNodeState> {
    const found = await this.#client.find(this.#name);
    if (found) return found;
    try {
      const created = await this.#client.create({
        apiVersion: API_VERSION,
        kind: 'APNodeState',
        metadata: { name: this.#name },
        spec: {},
      });
      this.#log.info('created APNodeState with an empty spec', {});
      return created;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      return this.#client.get(this.#name); // created by someone else in between
    }
  }

  #seen(object: APNodeState): void {
    if (object.metadata?.name !== this.#name) return;
    if (this.#current && !isNewer(object, this.#current)) return;
    this.#current = object;
    for (const listener of this.#listeners) listener('updated', object);
  }

  #deleted(object: APNodeState): void {
    if (object.metadata?.name !== this.#name) return;
    this.#log.warn('APNodeState was deleted; recreating it with an empty spec', {});
    this.#current = undefined;
    for (const listener of this.#listeners) listener('deleted', object);
    void this.recreate();
  }
}

/** A copy at least as new as `than` (resourceVersion order, when both are numbers), or one of a
 *  different incarnation (recreated object). */
function isNewer(object: APNodeState, than: APNodeState): boolean {
  if (object.metadata?.uid !== than.metadata?.uid) return true;
  const a = object.metadata?.resourceVersion;
  const b = than.metadata?.resourceVersion;
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) >= BigInt(b);
}
