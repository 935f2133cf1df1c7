// apmask/aqmask changes as ONE relative write ('+0x5,-0x10-0x1f'): the kernel applies only the
// named bits, so bits the operator does not own are never rewritten, even if someone changes
// them between our read and our write.
import { ApbusInputError } from '../ids.js';
import type { SysfsIO } from '../sysfs-io.js';
import type { Mask } from '../mask.js';
import { checkId, maskPath } from './paths.js';
import { parseMask } from './parse.js';
import type { MaskBitChange, MaskKind } from './types.js';

/** The relative write for a set of bit changes, or '' when there are none. Runs of adjacent
 *  bits become ranges. A bit asked to be both set and cleared is refused. */
export function relativeMaskWrite(changes: readonly MaskBitChange[]): string {
  const wanted = new Map<number, boolean>();
  for (const change of changes) {
    const bit = checkId(change?.bit, 'mask bit');
    if (typeof change.value !== 'boolean') throw new ApbusInputError(`mask bit ${bit}: value must be true or false`);
    const earlier = wanted.get(bit);
    if (earlier !== undefined && earlier !== change.value) {
      throw new ApbusInputError(`mask bit ${bit} is asked to be both set and cleared`);
    }
    wanted.set(bit, change.value);
  }
  const terms: string[] = [];
  for (const value of [true, false]) {
    const bits = [...wanted].filter(([, v]) => v === value).map(([b]) => b).sort((a, b) => a - b);
    const sign = value ? '+' : '-';
    for (let i = 0; i < bits.length; ) {
      let j = i;
      while (j + 1 < bits.length && bits[j + 1] === bits[j]! + 1) j++;
      const from = `0x${bits[i]!.toString(16)}`;
      terms.push(i === j ? `${sign}${from}` : `${sign}${from}-0x${bits[j]!.toString(16)}`);
      i = j + 1;
    }
  }
  return terms.join(',');
}

export function readMask(io: SysfsIO, kind: MaskKind): Mask {
  const path = maskPath(kind);
  return parseMask(io.read(path), path);
}

/** Applies the changes with one write and returns the mask as the kernel then prints it. */
export function setMaskBits(io: SysfsIO, kind: MaskKind, changes: readonly MaskBitChange[]): Mask {
  const path = maskPath(kind);
  const text = relativeMaskWrite(changes);
  if (text !== '') io.write(path, text);
  return parseMask(io.read(path), path);
}
