import test from 'ava';
import {
  ApbusInputError,
  MDEV_UUID_RE,
  apqnFromIndex,
  apqnIndex,
  compareApqn,
  formatAdapterId,
  formatApqn,
  formatDomainId,
  parseAdapterId,
  parseApqn,
  parseDomainId,
  parseMdevUuid,
} from '../../src/apbus/ids.js';

const adapterOk: Array<[string, number, string]> = [
  ['5', 5, 'one hex digit'],
  ['05', 5, 'canonical two digits'],
  ['0x05', 5, '0x prefix'],
  ['0x5', 5, '0x prefix, one digit'],
  ['0X5', 5, 'upper-case 0X prefix'],
  ['ff', 255, 'highest adapter'],
  ['FF', 255, 'upper-case hex digits'],
  ['0', 0, 'adapter zero'],
  ['0010', 16, 'hex, not decimal or octal'],
  ['1e', 30, 'hex letters, not an exponent'],
];
for (const [text, want, why] of adapterOk) {
  test(`parseAdapterId accepts ${JSON.stringify(text)}: ${why}`, (t) => {
    t.is(parseAdapterId(text), want);
  });
}

const adapterBad: Array<[string, string]> = [
  ['', 'empty'],
  ['-1', 'negative'],
  ['256', 'hex 0x256 is above 255'],
  ['100', 'hex 0x100 is above 255'],
  ['5.4', 'an APQN is not an adapter'],
  ['g', 'not a hex digit'],
  ['0x', 'prefix without digits'],
  [' 5', 'leading space'],
  ['5 ', 'trailing space'],
  ['5\n', 'trailing newline'],
  ['0 5', 'whitespace inside'],
  ['5;rm -rf /', 'shell characters'],
  ['$(id)', 'shell substitution'],
  ['+5', 'sign'],
  ['00005', 'more than four digits'],
  ['0x0x5', 'double prefix'],
  ['５', 'full-width digit'],
];
for (const [text, why] of adapterBad) {
  test(`parseAdapterId rejects ${JSON.stringify(text)}: ${why}`, (t) => {
    t.throws(() => parseAdapterId(text), { instanceOf: ApbusInputError });
  });
}

const domainOk: Array<[string, number, string]> = [
  ['4', 4, 'one digit'],
  ['0004', 4, 'canonical four digits'],
  ['0x0004', 4, '0x and four digits'],
  ['0x4', 4, '0x and one digit'],
  ['00ff', 255, 'highest domain'],
  ['54', 84, 'hex 0x54'],
];
for (const [text, want, why] of domainOk) {
  test(`parseDomainId accepts ${JSON.stringify(text)}: ${why}`, (t) => {
    t.is(parseDomainId(text), want);
  });
}

test('parseDomainId rejects 0100 (256) and says the range', (t) => {
  const err = t.throws(() => parseDomainId('0100'), { instanceOf: ApbusInputError });
  t.regex(err!.message, /domains are 0\.\.255 \(00\.\.ff\)/);
});

for (const [text, why] of [['', 'empty'], ['0x', 'no digits'], ['00004', 'five digits'], ['4 ', 'trailing space'], ['-4', 'negative']]) {
  test(`parseDomainId rejects ${JSON.stringify(text)}: ${why}`, (t) => {
    t.throws(() => parseDomainId(text!), { instanceOf: ApbusInputError });
  });
}

const apqnOk: Array<[string, string, string]> = [
  ['05.0004', '05.0004', 'canonical'],
  ['5.4', '05.0004', 'short digits'],
  ['0x05.0x0004', '05.0004', 'both 0x-prefixed'],
  ['0x5.0004', '05.0004', 'one side prefixed'],
  ['FF.00FF', 'ff.00ff', 'upper case normalised'],
  ['00.0000', '00.0000', 'lowest'],
];
for (const [text, want, why] of apqnOk) {
  test(`parseApqn accepts ${JSON.stringify(text)}: ${why}`, (t) => {
    t.is(formatApqn(parseApqn(text)), want);
  });
}

const apqnBad: Array<[string, string]> = [
  ['5.4.3', 'three parts'],
  ['05', 'adapter only'],
  ['.0004', 'domain only'],
  ['05.', 'empty domain'],
  ['.', 'only a dot'],
  ['', 'empty'],
  ['05.0100', 'domain 256 (the four digits are formatting only)'],
  ['100.0004', 'adapter 256'],
  ['05 .0004', 'space'],
  ['05,0004', 'comma instead of dot'],
  ['05:0004', 'colon instead of dot'],
  ['05.0004\n', 'trailing newline'],
  ['05.0004;reboot', 'shell characters'],
];
for (const [text, why] of apqnBad) {
  test(`parseApqn rejects ${JSON.stringify(text)}: ${why}`, (t) => {
    const err = t.throws(() => parseApqn(text), { instanceOf: ApbusInputError });
    t.true(err!.message.includes(JSON.stringify(text)), 'the message names the input');
  });
}

test('formatters pad to kernel names', (t) => {
  t.is(formatAdapterId(5), '05');
  t.is(formatAdapterId(255), 'ff');
  t.is(formatDomainId(4), '0004');
  t.is(formatDomainId(255), '00ff');
  t.is(formatApqn({ adapter: 0x0a, domain: 0x54 }), '0a.0054');
});

for (const bad of [-1, 256, 1.5, Number.NaN]) {
  test(`formatters refuse ${bad}`, (t) => {
    t.throws(() => formatAdapterId(bad), { instanceOf: RangeError });
    t.throws(() => formatDomainId(bad), { instanceOf: RangeError });
  });
}

test('apqnIndex/apqnFromIndex and parse/format round-trip over all 65536 APQNs', (t) => {
  let failures = 0;
  for (let a = 0; a < 256; a++) {
    for (let d = 0; d < 256; d++) {
      const i = apqnIndex(a, d);
      const q = apqnFromIndex(i);
      const back = parseApqn(formatApqn(q));
      if (i !== a * 256 + d || q.adapter !== a || q.domain !== d || back.adapter !== a || back.domain !== d) failures++;
    }
  }
  t.is(failures, 0);
  t.throws(() => apqnFromIndex(65536), { instanceOf: RangeError });
  t.throws(() => apqnIndex(256, 0), { instanceOf: RangeError });
});

test('compareApqn sorts adapter-major', (t) => {
  const sorted = ['06.0001', '05.0004', '05.0001', '0a.0000'].map(parseApqn).sort(compareApqn).map(formatApqn);
  t.deepEqual(sorted, ['05.0001', '05.0004', '06.0001', '0a.0000']);
});

const uuidOk: Array<[string, string]> = [
  ['6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab', 'canonical lower case'],
  ['6D2F1B3C-0A4E-4C5D-9E8F-0123456789AB', 'upper case, lower-cased'],
];
for (const [text, why] of uuidOk) {
  test(`parseMdevUuid accepts ${why}`, (t) => {
    const uuid = parseMdevUuid(text);
    t.is(uuid, text.toLowerCase());
    t.regex(uuid, MDEV_UUID_RE);
  });
}

const uuidBad: Array<[string, string]> = [
  ['6d2f1b3c0a4e4c5d9e8f0123456789ab', 'no hyphens'],
  ['{6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab}', 'braces'],
  ['urn:uuid:6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab', 'urn prefix'],
  ['6d2f1b3c-0a4e-4c5d-9e8f-0123456789a', '35 characters'],
  ['6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab\n', 'trailing newline'],
  [' 6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab', 'leading space'],
  ['6d2f1b3c-0a4e-4c5d-9e8f-0123456789ag', 'non-hex character'],
  ['../../../../etc/passwd-xxxxxxxxxxxxxx', 'path traversal of the right length'],
  ['', 'empty'],
];
for (const [text, why] of uuidBad) {
  test(`parseMdevUuid rejects ${why}`, (t) => {
    t.throws(() => parseMdevUuid(text), { instanceOf: ApbusInputError });
  });
}
