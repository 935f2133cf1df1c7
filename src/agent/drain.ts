// The in-use policy: may a step take these queues away from the host driver now?
//
// The agent cordons before it moves: it sets a queue's zcrypt `online` to 0, so the host's
// zcrypt sends it no new request, then takes it away. The kernel decides what cordoning can
// be: zcrypt_queue.c online_store() calls ap_flush_queue() when a queue goes offline, which
// hands every request still queued or in flight back to zcrypt with EAGAIN (zcrypt_api then
// retries it on another online queue of that domain, if there is one). So a queue is
// cordoned only once nothing is in flight on it; from then on nothing new can start there,
// and the move cannot cut anything off.
//   Wait  — each idle queue of the move is cordoned at once (it stays idle); a busy one waits
//           until its requests in flight are done, then is cordoned; the move runs when all
//           are. Past drainTimeoutSeconds the queue is reported Stuck, and the agent keeps
//           waiting.
//   Fail  — refuse while any queue of the move has requests in flight (InUse), cordoning
//           nothing; look again next pass. Idle queues are cordoned and moved at once.
//   Force — go now; the requests in flight are cut off (the kernel returns them with EAGAIN),
//           and a Warning event says how many.
// When each wait started lives in AgentMemory between passes; nothing here sleeps.
import type { QueueInfo } from '../apbus/backend.js';
import type { InUsePolicy } from '../api/types.js';
import { formatApqn } from '../apbus/ids.js';
import { DEFAULT_INTENT, type WantedQueueIntent } from './spec.js';

/** When the agent first found a queue's move pending (for drainTimeoutSeconds). */
export interface DrainLook {
  readonly sinceMs: number;
}

export type QueueDrainState =
  | 'idle' // nothing in flight, and zcrypt sends it nothing new (cordoned, or offline anyway)
  | 'cordon' // nothing in flight, still online: cordon it, then it is idle
  | 'forced' // Force: moved regardless
  | 'waiting' // Wait: host requests in flight
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

/** How often a pass looks again at queues with host requests in flight. */
export const DEFAULT_LOOK_INTERVAL_MS = 1000;

export function judgeMoves(
  moves: readonly QueueInfo[],
  intents: ReadonlyMap<number, WantedQueueIntent>,
  looks: Map<number, DrainLook>,
  nowMs: number,
): MoveVerdict {
  const queues = moves.map((q) => judgeQueue(q, intents.get(q.apqn.adapter * 256 + q.apqn.domain), looks, nowMs));
  return { go: queues.every((v) => v.state === 'idle' || v.state === 'forced'), queues };
}

/** The queues of a verdict to cordon now: the idle online ones — unless the move is refused
 *  (Fail: nothing is touched while the host uses a queue of it). */
export function queuesToCordon(verdict: MoveVerdict): QueueInfo[] {
  if (verdict.queues.some((v) => v.state === 'refused')) return [];
  return verdict.queues.filter((v) => v.state === 'cordon').map((v) => v.queue);
}

function judgeQueue(q: QueueInfo, intent: WantedQueueIntent | undefined, looks: Map<number, DrainLook>, nowMs: number): QueueVerdict {
  const policy = intent?.inUsePolicy ?? DEFAULT_INTENT.inUsePolicy;
  const drainTimeoutSeconds = intent?.drainTimeoutSeconds ?? DEFAULT_INTENT.drainTimeoutSeconds;
  const index = q.apqn.adapter * 256 + q.apqn.domain;
  let look = looks.get(index);
  if (!look) {
    look = { sinceMs: nowMs };
    looks.set(index, look);
  }
  const waitedMs = nowMs - look.sinceMs;
  const verdict = (state: QueueDrainState): QueueVerdict => ({ queue: q, state, policy, reservation: intent?.reservation, drainTimeoutSeconds, waitedMs });
  if (policy === 'Force') return verdict('forced');
  if (q.requestsInFlight === 0) return verdict(q.online === true ? 'cordon' : 'idle');
  if (policy === 'Fail') return verdict('refused');
  return verdict(waitedMs >= drainTimeoutSeconds * 1000 ? 'stuck' : 'waiting');
}

/** "05.0004 has 3 host requests in flight (request_count 12)". */
export function describeActivity(v: QueueVerdict): string {
  const q = v.queue;
  return `${formatApqn(q.apqn)} has ${q.requestsInFlight} host request${q.requestsInFlight === 1 ? '' : 's'} in flight (request_count ${q.requestCount})`;
}
