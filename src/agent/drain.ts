// The in-use policy: may a step take these queues away from the host driver now?
//   Wait  — only once nothing is in flight and request_count stood still between two looks at
//           least `lookIntervalMs` apart; past drainTimeoutSeconds the queue is reported
//           Stuck, and the agent keeps waiting.
//   Fail  — refuse while the host uses the queue (InUse); look again next pass.
//   Force — go now; the requests in flight are cut off (the kernel returns them with EAGAIN),
//           and a Warning event says how many.
// The looks live in AgentMemory between passes; nothing here sleeps.
import type { QueueInfo } from '../apbus/backend.js';
import type { InUsePolicy } from '../api/types.js';
import { formatApqn } from '../apbus/ids.js';
import { DEFAULT_INTENT, type WantedQueueIntent } from './spec.js';

/** What the agent saw of one queue's host activity while a move of it was pending. */
export interface DrainLook {
  /** First look: when the drain started (for drainTimeoutSeconds). */
  readonly sinceMs: number;
  /** request_count at refMs; the queue is quiet once it stays there long enough. */
  refCount: number;
  refMs: number;
}

export type QueueDrainState =
  | 'idle' // nothing in flight, request_count still
  | 'forced' // Force: moved regardless
  | 'checking' // a first look showed nothing in flight; one more look decides
  | 'waiting' // Wait: host requests in flight or the count moving
  | 'stuck' // Wait past drainTimeoutSeconds
  | 'refused'; // Fail: in use

export interface QueueVerdict {
  readonly queue: QueueInfo;
  readonly state: QueueDrainState;
  readonly policy: InUsePolicy;
  readonly reservation: string | undefined;
  readonly drainTimeoutSeconds: number;
  readonly waitedMs: number;
}

export interface MoveVerdict {
  /** Every queue is idle or forced: the step may run. */
  readonly go: boolean;
  readonly queues: readonly QueueVerdict[];
}

export const DEFAULT_LOOK_INTERVAL_MS = 1000;

export function judgeMoves(
  moves: readonly QueueInfo[],
  intents: ReadonlyMap<number, WantedQueueIntent>,
  looks: Map<number, DrainLook>,
  nowMs: number,
  lookIntervalMs = DEFAULT_LOOK_INTERVAL_MS,
): MoveVerdict {
  const queues = moves.map((q) => judgeQueue(q, intents.get(q.apqn.adapter * 256 + q.apqn.domain), looks, nowMs, lookIntervalMs));
  return { go: queues.every((v) => v.state === 'idle' || v.state === 'forced'), queues };
}

function judgeQueue(
  q: QueueInfo,
  intent: WantedQueueIntent | undefined,
  looks: Map<number, DrainLook>,
  nowMs: number,
  lookIntervalMs: number,
): QueueVerdict {
  const policy = intent?.inUsePolicy ?? DEFAULT_INTENT.inUsePolicy;
  const drainTimeoutSeconds = intent?.drainTimeoutSeconds ?? DEFAULT_INTENT.drainTimeoutSeconds;
  const verdict = (state: QueueDrainState, waitedMs: number): QueueVerdict => ({
    queue: q,
    state,
    policy,
    reservation: intent?.reservation,
    drainTimeoutSeconds,
    waitedMs,
  });
  if (policy === 'Force') return verdict('forced', 0);

  const index = q.apqn.adapter * 256 + q.apqn.domain;
  let look = looks.get(index);
  let moved = false;
  if (!look) {
    look = { sinceMs: nowMs, refCount: q.requestCount, refMs: nowMs };
    looks.set(index, look);
  } else if (look.refCount !== q.requestCount) {
    moved = true;
    look.refCount = q.requestCount;
    look.refMs = nowMs;
  }
  const waitedMs = nowMs - look.sinceMs;
  const still = !moved && nowMs - look.refMs >= lookIntervalMs;
  if (q.requestsInFlight === 0 && still) return verdict('idle', waitedMs);
  if (policy === 'Fail') return verdict(q.requestsInFlight > 0 || moved ? 'refused' : 'checking', waitedMs);
  return verdict(waitedMs >= drainTimeoutSeconds * 1000 ? 'stuck' : 'waiting', waitedMs);
}

/** "05.0004 has 3 host requests in flight (request_count 12)". */
export function describeActivity(v: QueueVerdict): string {
  const q = v.queue;
  return `${formatApqn(q.apqn)} has ${q.requestsInFlight} host request${q.requestsInFlight === 1 ? '' : 's'} in flight (request_count ${q.requestCount})`;
}
