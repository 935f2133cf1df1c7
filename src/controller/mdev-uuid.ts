// The matrix mdev's UUID for a reservation: a name-based (version 5, SHA-1) UUID of the
// reservation's metadata.uid. Deterministic, so the controller never has to store it before
// the node spec names it, and a deleted-and-recreated reservation (new uid) gets a new mdev.
import { createHash } from 'node:crypto';

/** The namespace UUID of this operator's mdev names (random, fixed forever). */
const MDEV_NAMESPACE = '3c0a4f7e-5d1b-4b8e-9a62-8f1e0d7c2b59';

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/** RFC 4122 §4.3 name-based UUID (SHA-1) of `uid` in the operator's namespace, lower case. */
export function mdevUuidFor(uid: string): string {
  if (!uid) throw new Error('a reservation without metadata.uid has no mdev UUID');
  const hash = createHash('sha1').update(uuidBytes(MDEV_NAMESPACE)).update(uid, 'utf8').digest();
  const b = Buffer.from(hash.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x50; // version 5
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10xx
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
