// A rate-limited, de-duplicating work queue of object keys, with client-go's semantics:
// - a key is queued at most once however often it is added (dirty set);
// - a key being processed is never handed out twice at once; added again meanwhile, it is
//   queued again when the worker calls done(key) — so the latest state is always reconciled;
// - addAfter/addRateLimited delay an add (per-key exponential backoff and an overall token
//   bucket), keeping only the earliest pending time per key.
import { realClock, type Clock, type Timer } from './clock.js';
import { logger, type Logger } from '../log.js';

export interface RateLimiter {
  /** How long to wait before the key's next retry; counts the retry. */
  when(key: string): number;
  /** Stops tracking the key (call after a successful sync). */
  forget(key: string): void;
  /** Retries counted for the key since the last forget. */
  numRequeues(key: string): number;
}

/** baseMs, 2·baseMs, 4·baseMs … capped at maxMs, counted per key. */
export class ItemExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 300_000,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity long after the cap; stop computing once past it.
    if (n > 52) return this.maxMs;
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * An overall token bucket (qps refill, `burst` capacity) shared by all keys. Like Go's
 * rate.Limiter Reserve: every call takes a token, possibly borrowed from the future, and the
 * delay is how long until that token exists. Protects the API server when many keys fail.
 */
export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps = 10,
    private readonly burst = 100,
    private readonly clock: Clock = realClock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  when(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }

  forget(): void {}

  numRequeues(): number {
    return 0;
  }
}

/** The longest delay of several limiters; requeue counts come from the largest. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.numRequeues(key)));
  }
}

/** Per-key 5 ms doubling to 5 min, and 10 qps with a burst of 100 overall. */
export function defaultRateLimiter(clock: Clock = realClock): RateLimiter {
  return new MaxOfRateLimiter(new ItemExponentialBackoff(5, 300_000), new TokenBucket(10, 100, clock));
}

export interface WorkQueueOptions {
  name?: string;
  clock?: Clock;
  rateLimiter?: RateLimiter;
}

export class WorkQueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly waiting = new Map<string, { readyAt: number; timer: Timer }>();
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private readonly drainWaiters: Array<() => void> = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name ?? 'queue';
    this.clock = options.clock ?? realClock;
    this.limiter = options.rateLimiter ?? defaultRateLimiter(this.clock);
  }

  /** Queues the key unless it is already queued; ignored after shutDown. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // done(key) queues it again
    const getter = this.getters.shift();
    if (getter) {
      this.dirty.delete(key);
      this.processing.add(key);
      getter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Adds the key after `ms`; of several pending delays for one key the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const readyAt = this.clock.now() + ms;
    const pending = this.waiting.get(key);
    if (pending) {
      if (pending.readyAt <= readyAt) return;
      pending.timer.cancel();
    }
    const timer = this.clock.setTimer(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    this.waiting.set(key, { readyAt, timer });
  }

  /** Adds the key after its rate-limited backoff (counts a retry). */
  addRateLimited(key: string): void {
    this.addAfter(key, this.limiter.when(key));
  }

  /** Resets the key's backoff (after a successful sync). */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /**
   * The next key to process, waiting for one if the queue is empty; `undefined` once the
   * queue is shut down and empty. The caller must call done(key) when finished with it.
   */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks the key processed; if it was added meanwhile it goes back in the queue. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    if (this.dirty.has(key)) {
      this.dirty.delete(key); // add() re-marks it
      this.add(key);
    }
    this.notifyDrained();
  }

  /**
   * Stops accepting keys and cancels delayed adds. Keys still queued are handed out; getters
   * waiting on an empty queue get `undefined`.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) timer.cancel();
    this.waiting.clear();
    for (const getter of this.getters.splice(0)) getter(undefined);
    this.notifyDrained();
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Resolves when nothing is queued or being processed (use after shutDown to wait for workers). */
  drained(): Promise<void> {
    if (this.queue.length === 0 && this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Keys waiting to be handed out (the depth metric). */
  len(): number {
    return this.queue.length;
  }

  /** Keys waiting for a delayed add. */
  delayedLen(): number {
    return this.waiting.size;
  }

  private notifyDrained(): void {
    if (this.queue.length === 0 && this.processing.size === 0) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
    }
  }
}

/** What a sync returns: nothing (done), or a time after which to look at the key again. */
export type SyncResult = void | { requeueAfterMs: number };

/**
 * Runs `workers` loops that take keys from the queue and sync them, until the queue shuts
 * down and empties. A sync that throws is retried with the key's backoff; one that succeeds
 * resets it (requeueAfterMs schedules a later look without counting a failure).
 */
export async function runWorkers(
  queue: WorkQueue,
  workers: number,
  sync: (key: string) => Promise<SyncResult>,
  log: Logger = logger('workqueue', { queue: queue.name }),
): Promise<void> {
  const loop = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        const result = await sync(key);
        queue.forget(key);
        if (result && result.requeueAfterMs >= 0) queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        log.warn('sync failed; retrying with backoff', {
          key,
          retries: queue.numRequeues(key),
          error: err instanceof Error ? err.message : String(err),
        });
        queue.addRateLimited(key);
      } finally {
        queue.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, workers) }, loop));
}
