// Writing a custom object's status through the status subresource, only when it changed.
//
// The write is a JSON merge patch computed against the status it was derived from, carrying
// that object's resourceVersion as a precondition. If someone else wrote in between (409),
// the object is read again and the patch recomputed against what is really stored — without
// the precondition a field added by the other writer would survive our patch.
import { logger, type Logger } from '../log.js';
import { realClock, type Clock } from './clock.js';
import { describeError, isConflict, retryOnConflict, type CustomObject, type CustomResourceClient } from './client.js';
import { objectKey } from './keys.js';
import { deepEqual, mergePatch } from './merge-patch.js';

export interface StatusWriteOptions {
  /** Attempts in all, counting the first (default 5). */
  attempts?: number;
  clock?: Clock;
  log?: Logger;
}

export interface StatusWriteResult<T> {
  /** False when the stored status already equalled the desired one (no request made). */
  written: boolean;
  /** Patch requests sent (0 when nothing changed). */
  writes: number;
  /** The object after the write, or the one compared against when nothing was written. */
  object: T;
}

/**
 * Makes `object`'s status equal `desired`. `object` is usually the informer's cached copy;
 * nothing is sent when its status already equals `desired`. `desired` may be a function of
 * the object, so that after a conflict it is recomputed from the fresh copy.
 * Throws the API error when the object is gone (404) or the attempts run out.
 */
export async function writeStatus<T extends CustomObject & { status?: unknown }>(
  client: CustomResourceClient<T>,
  object: T,
  desired: NonNullable<T['status']> | ((fresh: T) => NonNullable<T['status']>),
  options: StatusWriteOptions = {},
): Promise<StatusWriteResult<T>> {
  const key = objectKey(object);
  const log = options.log ?? logger('status');
  const want = (obj: T) => (typeof desired === 'function' ? (desired as (fresh: T) => T['status'])(obj) : desired);
  let current = object;
  let writes = 0;
  let written = false;
  await retryOnConflict(
    async (attempt) => {
      if (attempt > 1) current = await client.get(key);
      const target = want(current);
      const patch = mergePatch(current.status, target);
      if (patch === undefined) return;
      writes++;
      try {
        current = await client.patchStatus(key, {
          metadata: { resourceVersion: current.metadata?.resourceVersion },
          status: patch,
        });
      } catch (err) {
        if (isConflict(err)) log.debug('status write conflicted; re-reading', { object: key, attempt });
        throw err;
      }
      written = true;
      if (!deepEqual(current.status, target)) {
        // The schema pruned or defaulted something: each later comparison would differ again.
        log.warn('stored status differs from the one written (fields pruned or defaulted by the schema)', {
          kind: client.type.kind,
          object: key,
        });
      }
    },
    { attempts: options.attempts ?? 5, initialDelayMs: 20, clock: options.clock ?? realClock },
  ).catch((err) => {
    // A conflict that outlived the attempts is the caller's to handle (it may re-judge); others are news.
    log[isConflict(err) ? 'debug' : 'warn']('status write failed', { kind: client.type.kind, object: key, error: describeError(err) });
    throw err;
  });
  return { written, writes, object: current };
}
