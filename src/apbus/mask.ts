// 256-bit AP masks (apmask, aqmask, the matrix bitmaps) and the kernel's text grammars for
// them. Bit 0 is the LEFTMOST bit of the text form, as in the kernel's set_bit_inv().
//
// Two grammars live here because the model (which must accept exactly what the kernel
// accepts) and the backend (which must read what the kernel prints) both need them:
// - applyMaskWrite: what a write to bus/ap/apmask or aqmask means (ap_parse_bitmap_str).
// - parseKernelNumber: what a write to assign_adapter & co. means (kstrtoul, base 0).

export const MASK_BITS = 256;
const WORDS = MASK_BITS / 32;

/** A write the kernel's parser would refuse. errno is what the write(2) returns. */
export class KernelParseError extends Error {
  constructor(
    message: string,
    readonly errno: 'EINVAL' | 'ERANGE' = 'EINVAL',
  ) {
    super(message);
    this.name = 'KernelParseError';
  }
}

function checkBit(bit: number): void {
  if (!Number.isInteger(bit) || bit < 0 || bit >= MASK_BITS) throw new RangeError(`mask bit ${bit} is not 0..255`);
}

/** Immutable 256-bit mask. Word w holds bits 32w..32w+31, bit 32w in the word's MSB. */
export class Mask {
  readonly #words: Uint32Array;

  private constructor(words: Uint32Array) {
    this.#words = words;
  }

  static all(): Mask {
    return new Mask(new Uint32Array(WORDS).fill(0xffffffff));
  }

  static none(): Mask {
    return new Mask(new Uint32Array(WORDS));
  }

  static of(bits: Iterable<number>): Mask {
    const words = new Uint32Array(WORDS);
    for (const bit of bits) {
      checkBit(bit);
      words[bit >>> 5]! |= 0x80000000 >>> (bit & 31);
    }
    return new Mask(words);
  }

  /** Bits first..last inclusive. */
  static range(first: number, last: number): Mask {
    checkBit(first);
    checkBit(last);
    const bits: number[] = [];
    for (let b = first; b <= last; b++) bits.push(b);
    return Mask.of(bits);
  }

  /** What the kernel PRINTS: '0x' + 64 hex digits, one trailing '\n' tolerated. */
  static parseKernel(text: string): Mask {
    const m = /^0x([0-9a-fA-F]{64})\n?$/.exec(text);
    if (!m) throw new KernelParseError(`not a kernel mask (0x + 64 hex digits): ${JSON.stringify(text)}`);
    const words = new Uint32Array(WORDS);
    for (let w = 0; w < WORDS; w++) words[w] = parseInt(m[1]!.slice(w * 8, w * 8 + 8), 16);
    return new Mask(words);
  }

  has(bit: number): boolean {
    checkBit(bit);
    return (this.#words[bit >>> 5]! & (0x80000000 >>> (bit & 31))) !== 0;
  }

  with(bit: number, value: boolean): Mask {
    checkBit(bit);
    const words = this.#words.slice();
    const flag = 0x80000000 >>> (bit & 31);
    words[bit >>> 5] = value ? words[bit >>> 5]! | flag : words[bit >>> 5]! & ~flag;
    return new Mask(words);
  }

  /** Set bits, ascending. */
  bits(): number[] {
    const out: number[] = [];
    for (let w = 0; w < WORDS; w++) {
      const word = this.#words[w]!;
      if (word === 0) continue;
      for (let i = 0; i < 32; i++) if (word & (0x80000000 >>> i)) out.push(w * 32 + i);
    }
    return out;
  }

  count(): number {
    let n = 0;
    for (const word of this.#words) {
      let v = word;
      while (v) {
        v &= v - 1;
        n++;
      }
    }
    return n;
  }

  equals(o: Mask): boolean {
    for (let w = 0; w < WORDS; w++) if (this.#words[w] !== o.#words[w]) return false;
    return true;
  }

  isAll(): boolean {
    return this.#words.every((w) => w === 0xffffffff);
  }

  isNone(): boolean {
    return this.#words.every((w) => w === 0);
  }

  and(o: Mask): Mask {
    return this.#combine(o, (a, b) => a & b);
  }

  or(o: Mask): Mask {
    return this.#combine(o, (a, b) => a | b);
  }

  /** Bits set here and not in `o`. */
  minus(o: Mask): Mask {
    return this.#combine(o, (a, b) => a & ~b);
  }

  /** '0x' + 64 lower-case hex digits, no newline — how the kernel prints a mask. */
  toKernelString(): string {
    let s = '0x';
    for (const word of this.#words) s += word.toString(16).padStart(8, '0');
    return s;
  }

  toString(): string {
    return this.toKernelString();
  }

  #combine(o: Mask, op: (a: number, b: number) => number): Mask {
    const words = new Uint32Array(WORDS);
    for (let w = 0; w < WORDS; w++) words[w] = op(this.#words[w]!, o.#words[w]!) >>> 0;
    return new Mask(words);
  }
}

// ---------------------------------------------------------------------------------------
// The kernel's number scanner (lib/kstrtox.c): base 0 means '0x'/'0X' + hex digit -> hex,
// a leading '0' -> octal (the '0' itself is a digit), else decimal. Scans the longest run of
// digits valid in that base and reports where it stopped.

const ULONG_MAX = (1n << 64n) - 1n;

interface Scanned {
  value: bigint;
  end: number;
  overflow: boolean;
}

function isHexDigit(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

function scanNumber(s: string, start: number): Scanned {
  let pos = start;
  let base = 10n;
  if (s[pos] === '0') {
    if ((s[pos + 1] === 'x' || s[pos + 1] === 'X') && isHexDigit(s[pos + 2])) {
      base = 16n;
      pos += 2;
    } else {
      base = 8n;
    }
  }
  let value = 0n;
  let overflow = false;
  const digitsStart = pos;
  for (; pos < s.length; pos++) {
    const c = s[pos]!;
    if (!isHexDigit(c)) break;
    const digit = BigInt(parseInt(c, 16));
    if (digit >= base) break;
    value = value * base + digit;
    if (value > ULONG_MAX) overflow = true;
  }
  // No digits: report no progress at all, even past a '0x' (cannot happen: the prefix is
  // only taken when a hex digit follows).
  return { value, end: pos === digitsStart ? start : pos, overflow };
}

/**
 * The kernel's number grammar for assign_* / unassign_* writes (kstrtoul, base 0): an
 * optional '+', then '0x..' hex, '0..' octal or decimal, then at most one '\n'. Returns the
 * value even when it is above any id maximum (the caller answers that with ENODEV).
 * Throws KernelParseError: EINVAL for bad syntax ('', '-1', '0a', '08', ' 5', '5 '),
 * ERANGE for values that do not fit in 64 bits. Text after a NUL byte is ignored.
 */
export function parseKernelNumber(raw: string): number {
  const nul = raw.indexOf('\0');
  const text = nul === -1 ? raw : raw.slice(0, nul); // the kernel reads a C string
  let pos = text.startsWith('+') ? 1 : 0;
  const scanned = scanNumber(text, pos);
  if (scanned.end === pos) throw new KernelParseError(`not a number: ${JSON.stringify(text)}`);
  if (scanned.overflow) throw new KernelParseError(`number out of range: ${JSON.stringify(text)}`, 'ERANGE');
  pos = scanned.end;
  if (text[pos] === '\n') pos++;
  if (pos !== text.length) throw new KernelParseError(`trailing characters in number: ${JSON.stringify(text)}`);
  return Number(scanned.value);
}

// ---------------------------------------------------------------------------------------
// Mask writes (ap_parse_bitmap_str): a leading '+' or '-' selects the relative form, which
// edits a copy of the current mask; anything else is the absolute hex form, which starts
// from zero. Either way the result is all-or-nothing.

/** hex2bitmap: optional '0x' (or bare 'x'), up to 64 hex digits from bit 0, one '\n'. */
function parseAbsolute(s: string): Mask {
  let pos = 0;
  if (s[0] === '0' && s[1] === 'x') pos++;
  if (s[pos] === 'x') pos++;
  const bits: number[] = [];
  let bit = 0;
  for (; pos < s.length && isHexDigit(s[pos]) && bit < MASK_BITS; pos++, bit += 4) {
    const nibble = parseInt(s[pos]!, 16);
    for (let n = 0; n < 4; n++) if (nibble & (0x8 >> n)) bits.push(bit + n);
  }
  if (s[pos] === '\n') pos++;
  if (pos !== s.length) {
    const why = isHexDigit(s[pos]) ? 'more than 64 hex digits' : `unexpected ${JSON.stringify(s[pos])}`;
    throw new KernelParseError(`invalid mask ${JSON.stringify(s)}: ${why}`);
  }
  return Mask.of(bits);
}

/** modify_bitmap: terms '+N', '-N', '+A-B', '-A-B', separated by any run of ',' or '\n'. */
function parseRelative(current: Mask, s: string, limit: number): Mask {
  const bad = (why: string) => new KernelParseError(`invalid mask edit ${JSON.stringify(s)}: ${why}`);
  const scanBit = (at: number): Scanned => {
    const n = scanNumber(s, at);
    if (n.end === at) throw bad(`expected a number at offset ${at}`);
    // The kernel would wrap a >64-bit number; refusing it is the only sane reading.
    if (n.overflow || n.value > BigInt(limit)) throw bad(`bit ${s.slice(at, n.end)} is above ${limit}`);
    return n;
  };
  const edits: Array<{ set: boolean; first: number; last: number }> = [];
  let pos = 0;
  while (pos < s.length) {
    const sign = s[pos++];
    if (sign !== '+' && sign !== '-') throw bad(`expected '+' or '-' at offset ${pos - 1}`);
    const a = scanBit(pos);
    pos = a.end;
    let z = a;
    if (s[pos] === '-') {
      z = scanBit(++pos);
      if (a.value > z.value) throw bad(`reversed range ${a.value}-${z.value}`);
      pos = z.end;
    }
    edits.push({ set: sign === '+', first: Number(a.value), last: Number(z.value) });
    while (s[pos] === ',' || s[pos] === '\n') pos++;
  }
  const bits = new Uint8Array(MASK_BITS);
  for (const b of current.bits()) bits[b] = 1;
  for (const e of edits) bits.fill(e.set ? 1 : 0, e.first, e.last + 1);
  const result: number[] = [];
  bits.forEach((v, b) => v && result.push(b));
  return Mask.of(result);
}

/**
 * The kernel's sysfs write grammar for apmask/aqmask (ap-bus.md "Mask writes"), applied to
 * `current`. Returns the new mask; throws KernelParseError (EINVAL) on any error, in which
 * case nothing may change. `maxBit` (default 255) bounds the numbers of the relative form.
 *
 * Edge cases, as the kernel does them: a zero-length write never reaches the parser, so ''
 * returns `current` unchanged; '\n' (what `echo > apmask` writes) is the absolute form with
 * no digits, i.e. all zeros; text after a NUL byte is ignored (the kernel sees a C string).
 */
export function applyMaskWrite(current: Mask, text: string, maxBit: number = MASK_BITS - 1): Mask {
  if (!Number.isInteger(maxBit) || maxBit < 0 || maxBit >= MASK_BITS) throw new RangeError(`maxBit ${maxBit} is not 0..255`);
  if (text.length === 0) return current;
  const nul = text.indexOf('\0');
  const s = nul === -1 ? text : text.slice(0, nul);
  if (s[0] === '+' || s[0] === '-') return parseRelative(current, s, maxBit);
  return parseAbsolute(s);
}
