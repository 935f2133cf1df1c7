import test from 'ava';
import { KernelParseError, Mask, applyMaskWrite, parseKernelNumber } from '../../src/apbus/mask.js';

const ZEROS = '0'.repeat(64);
const FS = 'f'.repeat(64);
const allBits = Array.from({ length: 256 }, (_, i) => i);
const allBut = (...out: number[]) => allBits.filter((b) => !out.includes(b));
const range = (a: number, z: number) => allBits.filter((b) => b >= a && b <= z);

// ---------------------------------------------------------------- the Mask value

test('all/none and their text forms', (t) => {
  t.is(Mask.all().toKernelString(), '0x' + FS);
  t.is(Mask.none().toKernelString(), '0x' + ZEROS);
  t.true(Mask.all().isAll());
  t.true(Mask.none().isNone());
  t.is(Mask.all().count(), 256);
  t.deepEqual(Mask.none().bits(), []);
});

test('bit 0 is the leftmost bit of the text form', (t) => {
  t.is(Mask.of([0]).toKernelString(), '0x8' + '0'.repeat(63));
  t.is(Mask.of([255]).toKernelString(), '0x' + '0'.repeat(63) + '1');
  t.is(Mask.of([1, 7]).toKernelString(), '0x41' + '0'.repeat(62));
  t.is(Mask.of([31, 32]).toKernelString(), '0x0000000180000000' + '0'.repeat(48));
});

test('has/with/bits/count, and with() leaves the original alone', (t) => {
  const m = Mask.none().with(5, true).with(200, true);
  t.true(m.has(5));
  t.false(m.has(6));
  t.deepEqual(m.bits(), [5, 200]);
  t.is(m.count(), 2);
  const cleared = m.with(5, false);
  t.deepEqual(cleared.bits(), [200]);
  t.deepEqual(m.bits(), [5, 200], 'immutable');
});

test('set operations', (t) => {
  const a = Mask.of([1, 2, 3]);
  const b = Mask.of([3, 4]);
  t.deepEqual(a.and(b).bits(), [3]);
  t.deepEqual(a.or(b).bits(), [1, 2, 3, 4]);
  t.deepEqual(a.minus(b).bits(), [1, 2]);
  t.deepEqual(Mask.all().minus(Mask.of([0, 255])).count(), 254);
  t.true(a.equals(Mask.of([3, 2, 1])));
  t.false(a.equals(b));
  t.deepEqual(Mask.range(10, 12).bits(), [10, 11, 12]);
});

for (const bad of [-1, 256, 0.5, Number.NaN]) {
  test(`bit ${bad} is out of range for has/with/of`, (t) => {
    t.throws(() => Mask.none().has(bad), { instanceOf: RangeError });
    t.throws(() => Mask.none().with(bad, true), { instanceOf: RangeError });
    t.throws(() => Mask.of([bad]), { instanceOf: RangeError });
  });
}

test('parseKernel reads what toKernelString prints, with or without the newline', (t) => {
  const m = Mask.of([0, 9, 100, 255]);
  t.true(Mask.parseKernel(m.toKernelString()).equals(m));
  t.true(Mask.parseKernel(m.toKernelString() + '\n').equals(m));
});

const kernelPrintBad: Array<[string, string]> = [
  ['0x' + '0'.repeat(63), '63 digits'],
  ['0x' + '0'.repeat(65), '65 digits'],
  [ZEROS, 'no 0x'],
  ['0x' + ZEROS + ' ', 'trailing space'],
  ['0x' + ZEROS + '\n\n', 'two newlines'],
  ['not supported\n', 'what a machine without QCI prints'],
];
for (const [text, why] of kernelPrintBad) {
  test(`parseKernel rejects ${why}`, (t) => {
    t.throws(() => Mask.parseKernel(text), { instanceOf: KernelParseError });
  });
}

// ---------------------------------------------------------------- mask writes (ap_parse_bitmap_str)

type Start = 'none' | 'all';
interface WriteCase {
  why: string;
  start: Start;
  input: string;
  want: number[] | 'EINVAL';
  maxBit?: number;
}

const writeCases: WriteCase[] = [
  // Absolute form (hex2bitmap): starts from zero, digits fill from bit 0.
  { why: '0x41 sets bits 1 and 7 (zero-padded on the right)', start: 'all', input: '0x41', want: [1, 7] },
  { why: 'the 0x prefix is optional', start: 'none', input: '41', want: [1, 7] },
  { why: "a bare 'x' prefix is accepted too", start: 'none', input: 'x41', want: [1, 7] },
  { why: 'one trailing newline, as echo writes it', start: 'none', input: '0x41\n', want: [1, 7] },
  { why: 'a single digit sets the first nibble', start: 'none', input: '1', want: [3] },
  { why: 'f sets bits 0-3', start: 'none', input: 'f', want: [0, 1, 2, 3] },
  { why: 'upper-case hex digits', start: 'none', input: '0xFF', want: range(0, 7) },
  { why: '0x alone is all zeros', start: 'all', input: '0x', want: [] },
  { why: '0x and newline is all zeros', start: 'all', input: '0x\n', want: [] },
  { why: 'a lone newline (echo > apmask) is all zeros', start: 'all', input: '\n', want: [] },
  { why: '00 is all zeros', start: 'all', input: '00', want: [] },
  { why: '64 f digits is all ones', start: 'none', input: '0x' + FS, want: allBits },
  { why: '64 digits and a newline', start: 'none', input: '0x' + FS + '\n', want: allBits },
  { why: 'bit 255 is the last digit', start: 'none', input: '0x' + '0'.repeat(63) + '1', want: [255] },
  { why: 'what the kernel prints can be written back', start: 'all', input: Mask.of([4, 200]).toKernelString() + '\n', want: [4, 200] },
  { why: 'absolute replaces, never merges', start: 'all', input: '0x80', want: [0] },
  { why: 'text after a NUL byte is not seen by the kernel', start: 'none', input: '0x41\0garbage', want: [1, 7] },
  { why: 'a lone NUL byte is a 1-byte write of an empty string: all zeros', start: 'all', input: '\0', want: [] },
  { why: 'more than 64 digits', start: 'all', input: '0x' + FS + '0', want: 'EINVAL' },
  { why: 'more than 64 digits without prefix', start: 'all', input: FS + 'f', want: 'EINVAL' },
  { why: 'two trailing newlines', start: 'all', input: '0x41\n\n', want: 'EINVAL' },
  { why: "upper-case 0X is not a prefix for hex2bitmap ('X' is not a digit)", start: 'all', input: '0X41', want: 'EINVAL' },
  { why: 'leading space', start: 'all', input: ' 0x41', want: 'EINVAL' },
  { why: 'trailing space', start: 'all', input: '0x41 ', want: 'EINVAL' },
  { why: 'space after the prefix', start: 'all', input: '0x 41', want: 'EINVAL' },
  { why: 'double x', start: 'all', input: '0xx41', want: 'EINVAL' },
  { why: 'non-hex digit', start: 'all', input: '0x4g', want: 'EINVAL' },
  { why: 'two masks separated by a comma', start: 'all', input: '0x41,0x42', want: 'EINVAL' },
  { why: 'carriage return (not a newline)', start: 'all', input: '0x41\r\n', want: 'EINVAL' },
  { why: 'a word', start: 'all', input: 'all', want: 'EINVAL' },
  { why: 'a missing sign makes it absolute, and a decimal list is not hex', start: 'all', input: '1,2', want: 'EINVAL' },

  // Relative form (modify_bitmap): edits the current mask, later terms win.
  { why: '+N sets one bit', start: 'none', input: '+0', want: [0] },
  { why: '+255 is the last bit', start: 'none', input: '+255', want: [255] },
  { why: '-N clears one bit', start: 'all', input: '-0', want: allBut(0) },
  { why: 'clearing a clear bit changes nothing', start: 'none', input: '-5', want: [] },
  { why: 'setting a set bit changes nothing', start: 'all', input: '+5', want: allBits },
  { why: '+A-B sets a range', start: 'none', input: '+1-3', want: [1, 2, 3] },
  { why: 'a one-bit range', start: 'none', input: '+3-3', want: [3] },
  { why: '-A-B clears a range', start: 'all', input: '-0-255', want: [] },
  { why: '+0-255 sets everything', start: 'none', input: '+0-255', want: allBits },
  { why: 'later terms win (+ then -)', start: 'none', input: '+1,-1', want: [] },
  { why: 'later terms win (- then +)', start: 'none', input: '-1,+1', want: [1] },
  { why: 'the kernel comment example +0-255,-128', start: 'none', input: '+0-255,-128', want: allBut(128) },
  { why: 'several terms', start: 'none', input: '+1,+2,+3', want: [1, 2, 3] },
  { why: '0x is hex', start: 'none', input: '+0x10', want: [16] },
  { why: '0X is hex too (kstrtox folds case)', start: 'none', input: '+0X10', want: [16] },
  { why: 'hex digits may be upper case', start: 'none', input: '+0xFF', want: [255] },
  { why: 'a leading 0 is octal: 010 is 8', start: 'none', input: '+010', want: [8] },
  { why: 'octal 0377 is 255', start: 'none', input: '+0377', want: [255] },
  { why: 'a lone 0 is octal zero', start: 'none', input: '+0', want: [0] },
  { why: '00 is zero', start: 'none', input: '+00', want: [0] },
  { why: 'mixed bases in one range', start: 'none', input: '+0x1-010', want: range(1, 8) },
  { why: 'a trailing newline', start: 'none', input: '+1\n', want: [1] },
  { why: 'a trailing comma', start: 'none', input: '+1,', want: [1] },
  { why: 'runs of commas are skipped', start: 'none', input: '+1,,+2', want: [1, 2] },
  { why: 'a newline also separates terms', start: 'none', input: '+1\n+2', want: [1, 2] },
  { why: 'terms need no separator at all (kernel quirk)', start: 'none', input: '+1+2', want: [1, 2] },
  { why: '+1-2-3 is "+1-2" then "-3" (kernel quirk)', start: 'all', input: '+1-2-3', want: allBut(3) },
  { why: 'text after a NUL byte is ignored', start: 'none', input: '+1\0+2', want: [1] },
  { why: '256 is above the last bit', start: 'none', input: '+256', want: 'EINVAL' },
  { why: '0x100 is above the last bit', start: 'none', input: '+0x100', want: 'EINVAL' },
  { why: 'octal 0400 is 256', start: 'none', input: '+0400', want: 'EINVAL' },
  { why: 'a range ending above the last bit', start: 'none', input: '+250-256', want: 'EINVAL' },
  { why: 'a reversed range', start: 'none', input: '+3-1', want: 'EINVAL' },
  { why: '08 is invalid octal', start: 'none', input: '+08', want: 'EINVAL' },
  { why: '09 is invalid octal', start: 'none', input: '+09', want: 'EINVAL' },
  { why: '0x without digits', start: 'none', input: '+0x', want: 'EINVAL' },
  { why: '0x followed by a non-hex letter', start: 'none', input: '+0xg', want: 'EINVAL' },
  { why: 'a lone +', start: 'none', input: '+', want: 'EINVAL' },
  { why: 'a lone -', start: 'all', input: '-', want: 'EINVAL' },
  { why: 'a sign then a newline', start: 'none', input: '+\n', want: 'EINVAL' },
  { why: 'a double sign', start: 'none', input: '+-1', want: 'EINVAL' },
  { why: 'a range without its end', start: 'none', input: '+1-', want: 'EINVAL' },
  { why: 'hex letters without 0x in decimal', start: 'none', input: '+a', want: 'EINVAL' },
  { why: 'a decimal point', start: 'none', input: '+1.5', want: 'EINVAL' },
  { why: 'a term without its sign', start: 'none', input: '+1,2', want: 'EINVAL' },
  { why: 'a later term without its sign', start: 'none', input: '+1,-2,3', want: 'EINVAL' },
  { why: 'a space after the comma is not a sign', start: 'none', input: '+1, +2', want: 'EINVAL' },
  { why: 'a space after the sign', start: 'none', input: '+ 1', want: 'EINVAL' },
  { why: 'a leading space makes it absolute, and invalid', start: 'none', input: ' +1', want: 'EINVAL' },
  { why: 'a semicolon is not a separator', start: 'none', input: '+1;+2', want: 'EINVAL' },
  { why: 'an error in a late term undoes the good ones', start: 'none', input: '+1,+2,+300', want: 'EINVAL' },
  {
    why: 'a number beyond 64 bits (the kernel would wrap it; we refuse)',
    start: 'none',
    input: '+18446744073709551617',
    want: 'EINVAL',
  },
  { why: 'maxBit bounds single bits', start: 'none', input: '+15', maxBit: 15, want: [15] },
  { why: 'maxBit refuses a bit above it', start: 'none', input: '+16', maxBit: 15, want: 'EINVAL' },
  { why: 'maxBit refuses a range reaching above it', start: 'none', input: '+0-16', maxBit: 15, want: 'EINVAL' },
  { why: 'maxBit does not limit the absolute form (256 bits, as the kernel)', start: 'none', input: '0x' + FS, maxBit: 15, want: allBits },
];

for (const c of writeCases) {
  test(`mask write ${JSON.stringify(c.input).slice(0, 40)} on ${c.start}: ${c.why}`, (t) => {
    const current = c.start === 'all' ? Mask.all() : Mask.none();
    const before = current.toKernelString();
    if (c.want === 'EINVAL') {
      const err = t.throws(() => applyMaskWrite(current, c.input, c.maxBit), { instanceOf: KernelParseError });
      t.is(err!.errno, 'EINVAL');
    } else {
      t.deepEqual(applyMaskWrite(current, c.input, c.maxBit).bits(), c.want);
    }
    t.is(current.toKernelString(), before, 'the current mask never changes');
  });
}

test('a zero-length write never reaches the parser: the mask stays as it is', (t) => {
  const current = Mask.of([3, 9]);
  t.true(applyMaskWrite(current, '').equals(current));
});

test('writing the current value yields an equal mask', (t) => {
  const current = Mask.of([0, 77, 255]);
  t.true(applyMaskWrite(current, current.toKernelString() + '\n').equals(current));
});

test('maxBit itself must be a bit number', (t) => {
  t.throws(() => applyMaskWrite(Mask.none(), '+1', 256), { instanceOf: RangeError });
});

// ---------------------------------------------------------------- assign_* numbers (kstrtoul base 0)

const numberOk: Array<[string, number, string]> = [
  ['0', 0, 'zero'],
  ['5', 5, 'decimal'],
  ['255', 255, 'decimal 255'],
  ['5\n', 5, 'one trailing newline (echo)'],
  ['+5', 5, 'kstrtoull skips one leading +'],
  ['0x1f', 31, 'hex'],
  ['0X1F', 31, 'upper-case hex'],
  ['010', 8, 'octal'],
  ['0377', 255, 'octal 255'],
  ['00', 0, 'octal zero'],
  ['0x0', 0, 'hex zero'],
  ['256', 256, 'above every id maximum is still a number (the caller answers ENODEV)'],
  ['5\0junk', 5, 'text after a NUL byte is not seen'],
];
for (const [text, want, why] of numberOk) {
  test(`parseKernelNumber(${JSON.stringify(text)}) = ${want}: ${why}`, (t) => {
    t.is(parseKernelNumber(text), want);
  });
}

const numberBad: Array<[string, 'EINVAL' | 'ERANGE', string]> = [
  ['', 'EINVAL', 'empty'],
  ['\n', 'EINVAL', 'only a newline'],
  ['-1', 'EINVAL', 'negative'],
  ['0a', 'EINVAL', 'invalid octal (leading 0, then a hex letter)'],
  ['08', 'EINVAL', 'invalid octal digit'],
  ['a', 'EINVAL', 'hex without 0x'],
  ['0x', 'EINVAL', '0x without digits'],
  ['0xg', 'EINVAL', '0x then a non-hex letter'],
  [' 5', 'EINVAL', 'leading space'],
  ['5 ', 'EINVAL', 'trailing space'],
  ['5\n\n', 'EINVAL', 'two newlines'],
  ['\n5', 'EINVAL', 'newline first'],
  ['+', 'EINVAL', 'a lone plus'],
  ['++5', 'EINVAL', 'two pluses'],
  ['5a', 'EINVAL', 'trailing letter'],
  ['1.5', 'EINVAL', 'decimal point'],
  ['1e3', 'EINVAL', 'exponent'],
  ['18446744073709551616', 'ERANGE', '2^64 does not fit'],
  ['0x10000000000000000', 'ERANGE', '2^64 in hex'],
];
for (const [text, errno, why] of numberBad) {
  test(`parseKernelNumber rejects ${JSON.stringify(text)} with ${errno}: ${why}`, (t) => {
    const err = t.throws(() => parseKernelNumber(text), { instanceOf: KernelParseError });
    t.is(err!.errno, errno);
  });
}

test('parseKernelNumber: 2^64-1 still parses (a huge id, rejected later as ENODEV)', (t) => {
  t.true(parseKernelNumber('18446744073709551615') > 255);
});
