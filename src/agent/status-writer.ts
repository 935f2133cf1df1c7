// Writes this node's APNodeState.status — and nothing more often than it must.
//
// The reconcile loop offers a fresh status after every pass (every rescan, 2 s by default);
// this writer decides whether the API server needs to hear it:
//   - a change a reader acts on (conditions, masks, drivers, mdevs, reservation phases, card
//     states, observedGeneration …) is written promptly: three at once after a quiet spell (a new
//     spec right after a release is not held up), then bursts coalesced to one write per
//     minIntervalMs (a token bucket);
//   - except a status the loop says is short-lived (offer's settlesAtMs: steps left for the
//     next pass): it is held until then plus
//     a grace, at most maxHoldMs, and a newer offer replaces it. So a spec generation applied
//     without real waiting costs one write — observedGeneration and the final state together —
//     while a wait that lasts (requests in flight, Stuck, InUse, a failure) goes out at once;
//   - a change of nothing but host counters (queues[].requestCount / requestsInFlight moving
//     while host programs use their queues) waits for the next heartbeat — on a busy node with
//     thousands of queues those counters move all the time, and each write sends every queue;
//   - otherwise a heartbeat (heartbeatTime, MicroTime) every heartbeatMs, so the controller can
//     tell a dead agent from a quiet one. Every write carries a fresh heartbeatTime.
// Writes are JSON merge patches against the newest copy of the object we know (a heartbeat is
// a patch of one field) with its resourceVersion as precondition; a 409 re-reads and retries
// (k8s/status.ts). Any other failure (API server unreachable, 5xx, timeouts) is retried with
// exponential backoff, always with the newest status offered — it never throws at the caller.
import type { APNodeState, NodeStateStatus } from '../api/types.js';
import { realClock, formatMicroTime, parseApiTime, type Clock, type Timer } from '../k8s/clock.js';
import { describeError, isConflict, isInvalid, isNotFound, type CustomResourceClient } from '../k8s/client.js';
import { classifyStatusDifference as classifyDifference } from '../api/node-status.js';
import { writeStatus } from '../k8s/status.js';
import { logger, type Logger } from '../log.js';

export const DEFAULT_HEARTBEAT_MS = 10_000;
const DEFAULT_MIN_INTERVAL_MS = 100;
/** Significant writes allowed at once after a quiet spell. */
const WRITE_BURST = 3;
/** A short-lived status is held this long past its settlesAtMs: the pass due then has to run. */
const DEFAULT_SETTLE_GRACE_MS = 500;
/** …and never longer than this since the last write (a chain of short-lived statuses). */
const DEFAULT_MAX_HOLD_MS = 3000;
const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 };
/** Longer than the API server's own 60 s request timeout: only a dead connection hits it. */
const DEFAULT_WRITE_TIMEOUT_MS = 90_000;
const STOP_WAIT_MS = 10_000;

class WriteTimeout extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number, clock: Clock): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimer(() => reject(new WriteTimeout(`no answer within ${Math.round(ms / 1000)} s`)), ms);
    promise.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (err: unknown) => {
        timer.cancel();
        reject(err);
      },
    );
  });
}

export interface NodeStatusWriterOptions {
  client: CustomResourceClient<APNodeState>;
  nodeName: string;
  /** Heartbeat period (default 10 s); counter-only changes also wait for it. */
  heartbeatMs?: number;
  /** Least time between two writes of real changes (default 250 ms). */
  minIntervalMs?: number;
  /** A short-lived status (offer's settlesAtMs) is held until settlesAtMs + this (default 500 ms)… */
  settleGraceMs?: number;
  /** …but at most this long (default 3 s) after the first held offer since the last write. */
  maxHoldMs?: number;
  /** Retry delays after a failed write: initialMs doubling up to maxMs (default 0.5 … 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** A write with no answer this long counts as failed (default 90 s). */
  writeTimeoutMs?: number;
  clock?: Clock;
  log?: Logger;
  /** The object is gone (404): recreate it and hand back the new copy (spec-watch's ensure). */
  recreate?: () => Promise<APNodeState | undefined>;
  /** Asks the loop for a pass now. When given, a heartbeat is written only with the status of
   *  a pass that ran after the heartbeat fell due: the heartbeat then says "looked at the bus
   *  just now", and a stuck loop gets none (it looks dead, not quiet). */
  requestPass?: () => void;
}

export interface StatusWriterStats {
  /** Successful status patches (each is one resourceVersion bump). */
  writes: number;
  /** Of those, heartbeat-only patches. */
  heartbeats: number;
  /** 409s answered by re-reading the object. */
  conflicts: number;
  /** Write attempts that failed otherwise (unreachable, 5xx …) and were retried later. */
  failures: number;
  lastError?: string;
  /** When the last successful write happened (clock ms). */
  lastWriteMs?: number;
}

// What changed between two statuses (none, host counters only, or something a reader acts on):
// the same rule the controller uses to ignore heartbeats and counters.
export { classifyStatusDifference as classifyDifference } from '../api/node-status.js';

// The CRD's bound on messages (crds/ap.s390x.io_apnodestates.yaml): a status that breaks
// them is refused whole (422), so over-long sentences are cut here rather than lose the write.
const MESSAGE_MAX_BYTES = 32_768;

function clip(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const suffix = ' …(truncated)';
  let cut = Buffer.from(text).subarray(0, maxBytes - Buffer.byteLength(suffix)).toString('utf8');
  while (Buffer.byteLength(cut + suffix) > maxBytes || cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return cut + suffix;
}

export function withinSchemaLimits(status: NodeStateStatus): NodeStateStatus {
  const long = (t: string | undefined, max: number) => t !== undefined && Buffer.byteLength(t) > max;
  const conditionsTooLong = status.conditions?.some((c) => long(c.message, MESSAGE_MAX_BYTES));
  const reservationsTooLong = status.reservations?.some((r) => long(r.message, MESSAGE_MAX_BYTES));
  if (!conditionsTooLong && !reservationsTooLong) return status;
  return {
    ...status,
    ...(status.conditions
      ? { conditions: status.conditions.map((c) => ({ ...c, message: clip(c.message, MESSAGE_MAX_BYTES) })) }
      : {}),
    ...(status.reservations
      ? { reservations: status.reservations.map((r) => ({ ...r, message: clip(r.message, MESSAGE_MAX_BYTES) })) }
      : {}),
  };
}

/** resourceVersion order when both are numbers (etcd's revision, as every server today sends). */
function newer(a: APNodeState, b: APNodeState | undefined): boolean {
  if (!b) return true;
  const ra = a.metadata?.resourceVersion;
  const rb = b.metadata?.resourceVersion;
  if (!ra || !rb || !/^\d+$/.test(ra) || !/^\d+$/.test(rb)) return true;
  return BigInt(ra) >= BigInt(rb);
}

export class NodeStatusWriter {
  readonly #client: CustomResourceClient<APNodeState>;
  readonly #name: string;
  readonly #heartbeatMs: number;
  readonly #minIntervalMs: number;
  readonly #settleGraceMs: number;
  readonly #maxHoldMs: number;
  readonly #backoffInitialMs: number;
  readonly #backoffMaxMs: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #recreate: (() => Promise<APNodeState | undefined>) | undefined;
  readonly #requestPass: (() => void) | undefined;
  readonly #writeTimeoutMs: number;
  readonly #stats: StatusWriterStats = { writes: 0, heartbeats: 0, conflicts: 0, failures: 0 };

  /** Newest copy of the object we know: the patch base. */
  #base: APNodeState | undefined;
  /** The newest status the loop offered (without heartbeatTime). */
  #wanted: NodeStateStatus | undefined;
  /** Clock time of the heartbeat stored on the server (NaN: none or unreadable). */
  #heartbeatAtMs = Number.NaN;
  /** When the newest status was offered (clock ms). */
  #offeredAtMs = Number.NEGATIVE_INFINITY;
  /** A change of the newest status is not written before this (clock ms): it is short-lived. */
  #holdUntilMs = Number.NEGATIVE_INFINITY;
  /** When holding started (the first short-lived offer since the last write or lasting offer). */
  #holdingSinceMs: number | undefined;
  /** The heartbeat due time a pass was requested for (no second request for the same one). */
  #passRequestedFor = Number.NaN;
  #lastAttemptMs = Number.NEGATIVE_INFINITY;
  /** Writes the bucket still allowed right after the last attempt (refills one per minIntervalMs, up to WRITE_BURST). */
  #creditAfterLast = WRITE_BURST;
  #failuresInRow = 0;
  #retryAtMs = 0;
  #timer: Timer | undefined;
  #timerDueMs = Number.POSITIVE_INFINITY;
  #writing: Promise<void> | undefined;
  #stopped = false;
  readonly #writtenWaiters: Array<() => void> = [];

  constructor(options: NodeStatusWriterOptions) {
    this.#client = options.client;
    this.#name = options.nodeName;
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#minIntervalMs = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
    this.#settleGraceMs = options.settleGraceMs ?? DEFAULT_SETTLE_GRACE_MS;
    this.#maxHoldMs = options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
    this.#backoffInitialMs = options.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs;
    this.#backoffMaxMs = options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs;
    this.#clock = options.clock ?? realClock;
    this.#log = options.log ?? logger('agent', { node: options.nodeName, object: `APNodeState/${options.nodeName}` });
    this.#recreate = options.recreate;
    this.#requestPass = options.requestPass;
    this.#writeTimeoutMs = options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
  }

  stats(): Readonly<StatusWriterStats> {
    return { ...this.#stats };
  }

  /** A copy of the object as the server has it (from the watch, or a read): a newer patch base. */
  observe(object: APNodeState): void {
    if (!newer(object, this.#base)) return;
    this.#base = object;
    const at = parseApiTime(object.status?.heartbeatTime);
    // Only a heartbeat we wrote is ours to time from; a stale one from a previous run is old anyway.
    this.#heartbeatAtMs = Number.isNaN(at) ? Number.NaN : Math.min(at, this.#clock.now());
    this.#schedule();
  }

  /** The status the last pass produced; `observedGeneration` is the spec generation it applied.
   *  `settlesAtMs` (clock ms): the status is short-lived — the loop expects to offer a newer one
   *  by then — so a change it brings may wait for that one (see the file's head). */
  offer(status: NodeStateStatus, observedGeneration: number | undefined, hint: { settlesAtMs?: number } = {}): void {
    const { heartbeatTime: _h, observedGeneration: _g, ...rest } = withinSchemaLimits(status);
    this.#wanted = observedGeneration !== undefined ? { observedGeneration, ...rest } : rest;
    const nowMs = this.#clock.now();
    this.#offeredAtMs = nowMs;
    if (hint.settlesAtMs === undefined) {
      this.#holdUntilMs = Number.NEGATIVE_INFINITY;
      this.#holdingSinceMs = undefined;
    } else {
      this.#holdingSinceMs ??= nowMs;
      this.#holdUntilMs = Math.min(hint.settlesAtMs + this.#settleGraceMs, this.#holdingSinceMs + this.#maxHoldMs);
    }
    this.#schedule(); // a timer set before a hold began finds nothing due yet and sets another
  }

  /** Resolves after the next successful write (tests and shutdown use it). */
  nextWrite(): Promise<void> {
    return new Promise((resolve) => this.#writtenWaiters.push(resolve));
  }

  /** True once something was written in this run. */
  hasWritten(): boolean {
    return this.#stats.writes > 0;
  }

  /** Stops writing; an in-flight write is awaited, nothing new starts. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    // A write in flight may finish (its result is harmless either way), but not forever.
    await withTimeout(this.#writing ?? Promise.resolve(), STOP_WAIT_MS, this.#clock).catch(() => undefined);
    for (const resolve of this.#writtenWaiters.splice(0)) resolve();
  }

  /** When the next write is due (clock ms), or Infinity when nothing is to be written. */
  #dueAtMs(): number {
    if (!this.#wanted || !this.#base) return Number.POSITIVE_INFINITY;
    let heartbeatDue = this.#heartbeatDueMs();
    // Asked the loop for a pass for this heartbeat: its offer, not a timer, brings the write.
    if (heartbeatDue === this.#passRequestedFor && !this.#freshFor(heartbeatDue)) heartbeatDue = Number.POSITIVE_INFINITY;
    const difference = classifyDifference(this.#base.status, this.#wanted);
    let due = heartbeatDue;
    if (difference === 'significant') {
      due = Math.min(due, this.#lastAttemptMs + Math.max(0, 1 - this.#creditAfterLast) * this.#minIntervalMs);
      // Short-lived: not even a heartbeat carries it out early (the hold is shorter than one).
      due = Math.max(due, this.#holdUntilMs);
    }
    return Math.max(due, this.#retryAtMs);
  }

  /** -Infinity before the first write of this run (write at once). */
  #heartbeatDueMs(): number {
    return Number.isNaN(this.#heartbeatAtMs) ? Number.NEGATIVE_INFINITY : this.#heartbeatAtMs + this.#heartbeatMs;
  }

  /** The newest status came from a pass at or after `dueMs` (always, without requestPass). */
  #freshFor(dueMs: number): boolean {
    return !this.#requestPass || this.#offeredAtMs >= dueMs;
  }

  #schedule(): void {
    if (this.#stopped || this.#writing) return;
    const due = this.#dueAtMs();
    if (due === Number.POSITIVE_INFINITY) return;
    if (this.#timer && this.#timerDueMs <= due) return;
    this.#timer?.cancel();
    this.#timerDueMs = due;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      this.#timerDueMs = Number.POSITIVE_INFINITY;
      this.#writing = this.#write().finally(() => {
        this.#writing = undefined;
        this.#schedule();
      });
    }, due - this.#clock.now());
  }

  async #write(): Promise<void> {
    if (this.#stopped || !this.#wanted || !this.#base) return;
    if (this.#clock.now() < this.#dueAtMs()) return; // an observed copy made it unnecessary
    const nowMs = this.#clock.now();
    const difference = classifyDifference(this.#base.status, this.#wanted);
    const heartbeatDue = this.#heartbeatDueMs();
    if (difference !== 'significant' && nowMs >= heartbeatDue && !this.#freshFor(heartbeatDue)) {
      this.#passRequestedFor = heartbeatDue;
      this.#requestPass!();
      return;
    }
    const target: NodeStateStatus = { ...this.#wanted, heartbeatTime: formatMicroTime(nowMs) };
    const refilled = this.#creditAfterLast + (nowMs - this.#lastAttemptMs) / this.#minIntervalMs;
    this.#creditAfterLast = Math.max(0, Math.min(WRITE_BURST, refilled) - 1);
    this.#lastAttemptMs = nowMs;
    let conflicts = 0;
    try {
      const attempt = writeStatus(this.#client, this.#base, target, {
        clock: this.#clock,
        log: this.#log,
        attempts: 5,
      }).catch(async (err) => {
        if (!isNotFound(err) || !this.#recreate) throw err;
        // Someone deleted the object: recreate it (empty spec) and write onto the new one.
        this.#log.warn('APNodeState is gone; recreating it', {});
        const fresh = await this.#recreate();
        if (!fresh) throw err;
        this.#base = fresh;
        return writeStatus(this.#client, fresh, target, { clock: this.#clock, log: this.#log, attempts: 5 });
      });
      // A connection that hangs (no reset, no answer) must not end the heartbeat for good.
      const result = await withTimeout(attempt, this.#writeTimeoutMs, this.#clock);
      conflicts = Math.max(0, result.writes - 1);
      this.#stats.conflicts += conflicts;
      if (result.written) {
        this.#stats.writes++;
        if (difference === 'none') this.#stats.heartbeats++;
        this.#stats.lastWriteMs = this.#clock.now();
      }
      if (newer(result.object, this.#base)) this.#base = result.object;
      this.#heartbeatAtMs = nowMs;
      if (this.#holdingSinceMs !== undefined) this.#holdingSinceMs = nowMs; // a chain of holds writes every maxHoldMs
      this.#failuresInRow = 0;
      this.#retryAtMs = 0;
      if (conflicts > 0) this.#log.info('status write conflicted (409); re-read and retried', { conflicts });
      for (const resolve of this.#writtenWaiters.splice(0)) resolve();
    } catch (err) {
      if (isConflict(err)) this.#stats.conflicts++;
      this.#stats.failures++;
      this.#stats.lastError = describeError(err);
      const delay = Math.min(this.#backoffInitialMs * 2 ** Math.min(this.#failuresInRow, 20), this.#backoffMaxMs);
      this.#failuresInRow++;
      this.#retryAtMs = this.#clock.now() + delay * (1 + Math.random() * 0.1);
      // The base may be what made it fail (deleted, replaced): read it again before the retry.
      void this.#refreshBase();
      // 422: the server refused this status (schema); only a different status can fix it.
      const level = isInvalid(err) ? 'error' : 'warn';
      this.#log[level](isInvalid(err) ? 'status refused by the API server; retrying with backoff' : 'status write failed; retrying with backoff', {
        error: this.#stats.lastError,
        retryInMs: Math.round(delay),
        failuresInRow: this.#failuresInRow,
      });
    }
  }

  async #refreshBase(): Promise<void> {
    if (this.#stopped) return;
    try {
      const fresh = await this.#client.find(this.#name);
      if (fresh) this.observe(fresh);
    } catch {
      // still unreachable; the next attempt tries again
    }
  }
}
