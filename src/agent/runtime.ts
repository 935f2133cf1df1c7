// The node agent's loop: the Kubernetes side around the core's reconcileNode.
//
//   start → read (or create) APNodeState/<node>; the journal on the node (journal.ts) tells
//           which mdevs are ours and what the agent changed and must hand back
//         → watch that one object
//         → pass: reconcileNode(backend, spec, memory) → status to the writer (with the core's
//           hint that it is short-lived, if so), events handed to the sink without waiting
//         → sleep until the rescan interval, the core's requeueAfterMs, or a spec change.
//
// An idle pass costs one bus fingerprint (the core keeps its last answer while neither the spec
// nor the bus moved). Nothing here throws at the caller: API errors are retried with backoff by
// the spec watch and the status writer, while passes go on with the last whole spec seen; a
// pass that throws (a bug, or a test's injected kill) is reported in Synced and retried later.
import type { ApiConfig } from '../k8s/kubeconfig.js';
import type { SysfsBackend } from '../apbus/backend.js';
import type { APNodeState, NodeStateStatus } from '../api/types.js';
import { setCondition } from '../controller/conditions.js';
import { realClock, type Clock, type Timer } from '../k8s/clock.js';
import { NodeStateType, CustomResourceClient, describeError } from '../k8s/client.js';
import { logger, type Logger } from '../log.js';
import { newAgentMemory, reconcileNode, type AgentEvent, type AgentMemory, type PassOptions, type PassResult } from './core.js';
import { logOnlyEventSink, type AgentEventSink } from './event-sink.js';
import type { AgentJournal } from './journal.js';
import { NodeSpecWatch } from './spec-watch.js';
import { DEFAULT_HEARTBEAT_MS, NodeStatusWriter, type StatusWriterStats } from './status-writer.js';

export const DEFAULT_RESCAN_MS = 2000;
const MAX_ERROR_BACKOFF_MS = 60_000;
const EVENT_FLUSH_WAIT_MS = 5000;

export interface AgentRuntimeOptions {
  kubeConfig: ApiConfig;
  nodeName: string;
  backend: SysfsBackend;
  /** Bus rescan interval (default 2 s): how soon drift is seen. */
  rescanMs?: number;
  /** Status heartbeat interval (default 10 s). */
  heartbeatMs?: number;
  /** Drift stays True this long after the last difference (core default 30 s). */
  driftHoldSeconds?: number;
  /** Full pass at least this often even when nothing moved (core default 60 s). */
  resyncSeconds?: number;
  /** How often to look again at queues with host requests in flight (core default 1 s). */
  drainLookIntervalMs?: number;
  log?: Logger;
  clock?: Clock;
  /** Where the core's events go (default: log lines only). */
  events?: AgentEventSink;
  /** The APNodeState client (tests wrap it to inject API faults). */
  nodeStates?: CustomResourceClient<APNodeState>;
  /** Called before each step of a pass; a throw stops the pass there (tests: a crash). */
  onStep?: PassOptions['onStep'];
  /** Called before each journal write; a throw stops the pass there (tests: a crash). */
  onJournal?: PassOptions['onJournal'];
  /** The agent's record of what it changed, kept on the node (the agent command's --state-dir).
   *  Default: kept in memory, owning the mdevs the last status marks as owned — for programs
   *  that keep nothing on the node; such an agent forgets what to restore when it restarts. */
  journal?: AgentJournal;
  /** Backoff of the status writer and the spec watch (default 0.5 … 30 s). */
  apiBackoff?: { initialMs?: number; maxMs?: number };
}

export interface AgentStats {
  /** reconcileNode calls. */
  passes: number;
  /** Sysfs steps executed since start. */
  steps: number;
  /** Passes that threw. */
  passErrors: number;
  /** Clock time of the last finished pass. */
  lastPassMs?: number;
  /** Synced as the last pass saw it. */
  synced: boolean;
  status: StatusWriterStats;
}

export class AgentRuntime {
  readonly nodeName: string;
  readonly log: Logger;
  readonly #backend: SysfsBackend;
  readonly #clock: Clock;
  readonly #rescanMs: number;
  readonly #options: AgentRuntimeOptions;
  readonly #watch: NodeSpecWatch;
  readonly #writer: NodeStatusWriter;
  readonly #events: AgentEventSink;
  #memory: AgentMemory | undefined;
  #stats = { passes: 0, steps: 0, passErrors: 0, lastPassMs: undefined as number | undefined, synced: false };
  #errorsInRow = 0;
  #running: Promise<void> | undefined;
  #stopped = false;
  #kicked = false;
  #wake: (() => void) | undefined;
  #sleepTimer: Timer | undefined;
  /** generation/uid of the object the last pass applied: a watch event only wakes the loop
   *  when these move (our own status writes come back as watch events too). */
  #appliedIdentity = '';
  #bootstrapped = false;
  readonly #readyWaiters: Array<() => void> = [];

  constructor(options: AgentRuntimeOptions) {
    this.nodeName = options.nodeName;
    this.#options = options;
    this.#backend = options.backend;
    this.#clock = options.clock ?? realClock;
    this.#rescanMs = options.rescanMs ?? DEFAULT_RESCAN_MS;
    this.log = options.log ?? logger('agent', { node: options.nodeName, object: `APNodeState/${options.nodeName}` });
    const client = options.nodeStates ?? new CustomResourceClient<APNodeState>(options.kubeConfig, NodeStateType);
    this.#watch = new NodeSpecWatch({
      kubeConfig: options.kubeConfig,
      client,
      nodeName: options.nodeName,
      clock: this.#clock,
      log: this.log,
      backoff: options.apiBackoff,
    });
    this.#writer = new NodeStatusWriter({
      client,
      nodeName: options.nodeName,
      heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      clock: this.#clock,
      log: this.log,
      backoff: options.apiBackoff,
      recreate: () => this.#watch.recreate(),
      requestPass: () => this.#kick(),
    });
    this.#events = options.events ?? logOnlyEventSink(this.log);
    this.#watch.onChange((change, object) => {
      if (change === 'updated') this.#writer.observe(object);
      if (change === 'deleted' || identity(object) !== this.#appliedIdentity) this.#kick();
    });
  }

  /** Starts in the background: bootstrap (retried until the API server answers), then the loop. */
  start(): void {
    if (this.#running) return;
    this.#running = this.#run().catch((err) => {
      // #run handles its own errors; reaching here is a bug worth a loud line, not a crash.
      this.log.error('agent loop ended unexpectedly', { error: describeError(err) });
    });
  }

  /** Stops the loop (a pass in progress finishes), the watch and the status writer. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#kick();
    await this.#watch.stop(); // also ends a bootstrap still retrying against an absent API server
    await this.#running;
    await this.#writer.stop();
    // Event writes in flight may finish, but a hung one does not hold up the shutdown.
    await withDeadline(this.#events.flush?.(), EVENT_FLUSH_WAIT_MS, this.#clock);
    for (const resolve of this.#readyWaiters.splice(0)) resolve();
  }

  /** Resolves once the object was read and the first status written (or on stop). */
  ready(): Promise<void> {
    if (this.isReady()) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /** Bootstrapped and a status was written in this run. */
  isReady(): boolean {
    return this.#bootstrapped && this.#writer.hasWritten();
  }

  /** The loop ran a pass recently (liveness): within a few rescan periods, or the longest
   *  backoff after failing passes plus a margin (a failing agent is not a dead one). */
  isHealthy(maxSilenceMs = Math.max(5 * this.#rescanMs, MAX_ERROR_BACKOFF_MS + 30_000)): boolean {
    if (!this.#bootstrapped) return !this.#stopped;
    const last = this.#stats.lastPassMs;
    return last !== undefined && this.#clock.now() - last <= maxSilenceMs;
  }

  stats(): AgentStats {
    return { ...this.#stats, status: this.#writer.stats() };
  }

  /** The status the last pass produced (metrics count queues and drains from it). */
  lastStatus(): NodeStateStatus | undefined {
    return this.#memory?.lastStatus;
  }

  /** Wakes the loop for a pass now (tests; a spec change does this by itself). */
  kick(): void {
    this.#kick();
  }

  async #run(): Promise<void> {
    const object = await this.#watch.ensure();
    if (!object || this.#stopped) return;
    // What is ours and what to hand back survives restarts through the journal on the node; the
    // last status only carries condition times and reservation phases over.
    this.#memory = newAgentMemory(object.status, this.#options.journal);
    this.#writer.observe(object);
    this.#watch.start();
    this.#bootstrapped = true;
    const journal = this.#memory.journal;
    let entries: number | string;
    try {
      journal.load();
      entries = journal.size;
    } catch (err) {
      entries = describeError(err); // every pass reports it in Synced until it is fixed
    }
    this.log.info('agent started', {
      rescanMs: this.#rescanMs,
      journal: journal.location,
      journalEntries: entries,
      generation: object.metadata?.generation,
    });
    void this.#writer.nextWrite().then(() => {
      for (const resolve of this.#readyWaiters.splice(0)) resolve();
    });
    while (!this.#stopped) {
      const delay = this.#pass(this.#memory);
      await this.#sleep(delay);
    }
  }

  /** One pass; returns how long to sleep before the next. */
  #pass(memory: AgentMemory): number {
    const object = this.#watch.current();
    if (!object) return this.#rescanMs; // deleted, being recreated: nothing to obey meanwhile
    const spec = object.spec ?? {};
    const generation = object.metadata?.generation;
    this.#appliedIdentity = identity(object);
    const nowMs = this.#clock.now();
    let result: PassResult;
    try {
      result = reconcileNode(this.#backend, spec, memory, {
        nowMs,
        ...(generation !== undefined ? { generation } : {}),
        ...(this.#options.driftHoldSeconds !== undefined ? { driftHoldSeconds: this.#options.driftHoldSeconds } : {}),
        ...(this.#options.resyncSeconds !== undefined ? { resyncSeconds: this.#options.resyncSeconds } : {}),
        ...(this.#options.drainLookIntervalMs !== undefined ? { drainLookIntervalMs: this.#options.drainLookIntervalMs } : {}),
        ...(this.#options.onStep ? { onStep: this.#options.onStep } : {}),
        ...(this.#options.onJournal ? { onJournal: this.#options.onJournal } : {}),
      });
    } catch (err) {
      return this.#passFailed(memory, err, nowMs, generation);
    } finally {
      this.#stats.passes++;
      this.#stats.lastPassMs = this.#clock.now();
    }
    this.#errorsInRow = 0;
    this.#stats.synced = result.synced;
    this.#stats.steps += result.stepsExecuted.length;
    if (result.stepsExecuted.length > 0) {
      this.log.info('applied steps', { generation, steps: result.stepsExecuted, synced: result.synced });
    }
    for (const event of result.events) this.#emit(event, object);
    this.#writer.offer(result.status, generation, result.settlesAtMs !== undefined ? { settlesAtMs: result.settlesAtMs } : {});
    // After a failed step the core's backoff stands (rescanning sooner would only repeat the
    // failing write); otherwise the sooner of the rescan and the core's requeue.
    if (memory.failures > 0 && result.requeueAfterMs !== undefined) return result.requeueAfterMs;
    return Math.max(0, Math.min(this.#rescanMs, result.requeueAfterMs ?? Number.POSITIVE_INFINITY));
  }

  /** reconcileNode threw: say so in Synced (the bus state is unknown mid-plan) and back off. */
  #passFailed(memory: AgentMemory, err: unknown, nowMs: number, generation: number | undefined): number {
    this.#stats.passErrors++;
    this.#stats.synced = false;
    memory.idle = null; // the next pass must look at the bus again
    const delay = Math.min(this.#rescanMs * 2 ** Math.min(this.#errorsInRow, 10), MAX_ERROR_BACKOFF_MS);
    this.#errorsInRow++;
    const message = `The agent's pass stopped with an error: ${describeError(err)}; retrying in ${Math.round(delay / 1000)} s.`;
    this.log.error('reconcile pass failed', { error: describeError(err), retryInMs: delay });
    const last: NodeStateStatus = memory.lastStatus ?? {};
    const status: NodeStateStatus = {
      ...last,
      conditions: setCondition(
        last.conditions,
        { type: 'Synced', status: 'False', reason: 'AgentError', message, ...(generation !== undefined ? { observedGeneration: generation } : {}) },
        nowMs,
      ),
    };
    memory.lastStatus = status;
    this.#writer.offer(status, generation);
    return delay;
  }

  /** Hands an event to the sink and moves on: the pass never waits for an event write, and a
   *  sink that throws or hangs costs that event, not the loop. */
  #emit(event: AgentEvent, object: APNodeState): void {
    const fields = { reason: event.reason, reservation: event.reservation, apqns: event.apqns, message: event.message };
    if (event.type === 'Warning') this.log.warn('event', fields);
    else this.log.info('event', fields);
    const couldNot = (err: unknown) => this.log.warn('could not record event', { reason: event.reason, error: describeError(err) });
    try {
      this.#events.emit(event, object).catch(couldNot);
    } catch (err) {
      couldNot(err);
    }
  }

  #kick(): void {
    this.#kicked = true;
    this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    if (this.#kicked || this.#stopped) {
      this.#kicked = false;
      // Still yield, so watch events and writes run between back-to-back passes.
      return new Promise((resolve) => setImmediate(resolve));
    }
    return new Promise((resolve) => {
      const done = () => {
        this.#sleepTimer?.cancel();
        this.#sleepTimer = undefined;
        this.#wake = undefined;
        this.#kicked = false;
        resolve();
      };
      this.#wake = done;
      this.#sleepTimer = this.#clock.setTimer(done, ms);
    });
  }
}

/** Waits for `work` (its failure ignored), at most `ms`. */
function withDeadline(work: Promise<void> | undefined, ms: number, clock: Clock): Promise<void> {
  if (!work) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = clock.setTimer(resolve, ms);
    work.catch(() => undefined).then(() => {
      timer.cancel();
      resolve();
    });
  });
}

function identity(object: APNodeState): string {
  return `${object.metadata?.uid ?? ''}/${object.metadata?.generation ?? ''}`;
}
