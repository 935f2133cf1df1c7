// Adding and removing one finalizer with a JSON patch guarded by the object's resourceVersion
// (a `test` op): the finalizer list is shared with other controllers, and a merge patch would
// replace the whole list. A failed guard (409/422) means the object changed: read it again
// and recompute.
import { realClock, type Clock } from './clock.js';
import {
  PatchStrategy,
  isConflict,
  isInvalid,
  isNotFound,
  retryOnConflict,
  type CustomObject,
  type CustomResourceClient,
} from './client.js';
import { objectKey } from './keys.js';

export interface FinalizerOptions {
  attempts?: number;
  clock?: Clock;
}

const guardFailed = (err: unknown) => isConflict(err) || isInvalid(err);

export class ObjectDeletingError extends Error {
  constructor(key: string, finalizer: string) {
    super(`${key} is being deleted; finalizer ${finalizer} cannot be added any more`);
  }
}

/**
 * Ensures `finalizer` is on the object; returns the object as stored afterwards (no request
 * when it is already there). Refuses objects already being deleted: the server would reject
 * the new finalizer, and the caller must not start work that needs it.
 */
export async function addFinalizer<T extends CustomObject>(
  client: CustomResourceClient<T>,
  object: T,
  finalizer: string,
  options: FinalizerOptions = {},
): Promise<T> {
  const key = objectKey(object);
  let current = object;
  return retryOnConflict(
    async (attempt) => {
      if (attempt > 1) current = await client.get(key);
      const list = current.metadata?.finalizers ?? [];
      if (list.includes(finalizer)) return current;
      if (current.metadata?.deletionTimestamp) throw new ObjectDeletingError(key, finalizer);
      const ops = [
        { op: 'test', path: '/metadata/resourceVersion', value: current.metadata?.resourceVersion },
        current.metadata?.finalizers
          ? { op: 'add', path: '/metadata/finalizers/-', value: finalizer }
          : { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
      ];
      current = await client.patch(key, ops, { strategy: PatchStrategy.JsonPatch });
      return current;
    },
    { attempts: options.attempts ?? 5, clock: options.clock ?? realClock, retryable: guardFailed },
  );
}

/**
 * Ensures `finalizer` is not on the object; returns the object as stored afterwards, or
 * undefined when the object is gone (removing the last finalizer of a deleted object lets the
 * server delete it).
 */
export async function removeFinalizer<T extends CustomObject>(
  client: CustomResourceClient<T>,
  object: T,
  finalizer: string,
  options: FinalizerOptions = {},
): Promise<T | undefined> {
  const key = objectKey(object);
  let current: T | undefined = object;
  return retryOnConflict(
    async (attempt) => {
      if (attempt > 1) current = await client.find(key);
      if (!current) return undefined;
      const index = current.metadata?.finalizers?.indexOf(finalizer) ?? -1;
      if (index < 0) return current;
      const ops = [
        { op: 'test', path: '/metadata/resourceVersion', value: current.metadata?.resourceVersion },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ];
      try {
        current = await client.patch(key, ops, { strategy: PatchStrategy.JsonPatch });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
      return current;
    },
    { attempts: options.attempts ?? 5, clock: options.clock ?? realClock, retryable: guardFailed },
  );
}
