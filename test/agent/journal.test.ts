// The agent's journal on its own: the file format, atomic replacement on disk, strict reading
// (a journal the agent does not understand stops it), and entries from an earlier boot.
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentJournal, FileJournalStore, JOURNAL_FILE, JournalError, MemoryJournalStore, readBootId } from '../../src/agent/journal.js';

const UUID = '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab';

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fill(journal: AgentJournal): void {
  const d = journal.draft();
  d.setMaskBit({ mask: 'aqmask', bit: 4, original: true, reservations: ['ns/b', 'ns/a'] });
  d.setMaskBit({ mask: 'apmask', bit: 0x0a, original: false, reservations: [] });
  d.setOverride({ apqn: { adapter: 5, domain: 4 }, index: 5 * 256 + 4, original: '', reservations: ['ns/a'] });
  d.setCordon({ apqn: { adapter: 5, domain: 6 }, index: 5 * 256 + 6, reservations: ['ns/a'] });
  d.setMdev(UUID, 'ns/a');
  journal.commit(d);
}

test('file: written where --state-dir says, one entry per line, read back the same by a new agent', (t) => {
  const dir = path.join(tempDir(t), 'var/lib/apqn-operator'); // created on the first write
  const journal = new AgentJournal(new FileJournalStore(dir), { bootId: 'boot-1' });
  fill(journal);
  const file = path.join(dir, JOURNAL_FILE);
  const text = fs.readFileSync(file, 'utf8');
  t.is(
    text,
    `{"version":1,"bootId":"boot-1",
 "maskBits":[
  {"mask":"apmask","id":"0a","original":false,"reservations":[]},
  {"mask":"aqmask","id":"0004","original":true,"reservations":["ns/a","ns/b"]}
 ],
 "overrides":[
  {"apqn":"05.0004","original":"","reservations":["ns/a"]}
 ],
 "cordons":[
  {"apqn":"05.0006","reservations":["ns/a"]}
 ],
 "mdevs":[
  {"uuid":"${UUID}","reservation":"ns/a"}
 ]
}
`,
  );
  t.is(fs.statSync(file).mode & 0o777, 0o600, 'only root reads it');
  t.deepEqual(fs.readdirSync(dir), [JOURNAL_FILE], 'no temp file left behind');

  const again = new AgentJournal(new FileJournalStore(dir), { bootId: 'boot-1' });
  t.deepEqual([...again.maskBits()].map((b) => [b.mask, b.bit, b.original, b.reservations]), [
    ['apmask', 10, false, []],
    ['aqmask', 4, true, ['ns/a', 'ns/b']],
  ]);
  t.deepEqual([...again.overrides()].map((o) => [o.index, o.original]), [[5 * 256 + 4, '']]);
  t.deepEqual([...again.cordons()].map((c) => [c.index, c.reservations]), [[5 * 256 + 6, ['ns/a']]]);
  t.deepEqual([...again.mdevs()], [[UUID, 'ns/a']]);
});

test('file: a crash mid-write (a temp file left, never renamed) leaves the previous journal whole', (t) => {
  const dir = tempDir(t);
  const journal = new AgentJournal(new FileJournalStore(dir));
  fill(journal);
  const before = fs.readFileSync(path.join(dir, JOURNAL_FILE), 'utf8');
  fs.writeFileSync(path.join(dir, `.${JOURNAL_FILE}.12345.tmp`), '{"version":1,"maskBits":[{"mas'); // torn
  const again = new AgentJournal(new FileJournalStore(dir));
  t.is(again.size, 5);
  const d = again.draft();
  d.deleteMaskBit('aqmask', 4);
  again.commit(d);
  t.not(fs.readFileSync(path.join(dir, JOURNAL_FILE), 'utf8'), before);
  t.is(new AgentJournal(new FileJournalStore(dir)).size, 4);
  t.deepEqual(fs.readdirSync(dir), [JOURNAL_FILE], 'the torn temp file is cleared away');
});

test('a failed write leaves the journal as it was and says where (the change it covers must not be made)', (t) => {
  const failing = new AgentJournal({
    location: '/var/lib/apqn-operator/journal.json',
    load: () => null,
    save: () => {
      throw new Error('EIO: i/o error');
    },
  });
  const d = failing.draft();
  d.setMdev(UUID, 'ns/a');
  const err = t.throws(() => failing.commit(d), { instanceOf: JournalError });
  t.regex(err!.message, /cannot write the agent's journal \/var\/lib\/apqn-operator\/journal\.json: EIO/);
  t.is(failing.size, 0, 'nothing recorded');
});

const invalid: Array<{ text: string; why: string; says: RegExp }> = [
  { text: '{"version":1,"maskBits":[', why: 'torn JSON', says: /not valid/ },
  { text: '[]', why: 'not an object', says: /not an object/ },
  { text: '{"version":2}', why: 'a newer format', says: /version 2, expected 1/ },
  { text: '{"version":1,"maskBits":[{"mask":"aqmask","id":"0x100","original":true}]}', why: 'a domain above 255', says: /maskBits\[0\]/ },
  { text: '{"version":1,"maskBits":[{"mask":"xmask","id":"04","original":true}]}', why: 'an unknown mask', says: /maskBits\[0\]/ },
  { text: '{"version":1,"overrides":[{"apqn":"05","original":""}]}', why: 'a malformed APQN', says: /overrides\[0\]/ },
  { text: '{"version":1,"overrides":[{"apqn":"05.0004"}]}', why: 'an override without its original', says: /overrides\[0\]/ },
  { text: '{"version":1,"cordons":[{"apqn":"05.0004"},{"apqn":"05"}]}', why: 'a malformed cordoned APQN', says: /cordons\[1\]/ },
  { text: '{"version":1,"cordons":[{"apqn":"05.0004","reservations":"ns/a"}]}', why: 'cordon reservations that are not a list', says: /cordons\[0\]\.reservations/ },
  { text: '{"version":1,"mdevs":[{"uuid":"not-a-uuid"}]}', why: 'a malformed UUID', says: /mdevs\[0\]/ },
  { text: '{"version":1,"maskBits":{}}', why: 'a list that is not a list', says: /maskBits is not a list/ },
];

for (const c of invalid) {
  test(`strict reading: ${c.why} is refused (the agent changes nothing until it is fixed)`, (t) => {
    const store = new MemoryJournalStore('/var/lib/apqn-operator/journal.json');
    store.text = c.text;
    const journal = new AgentJournal(store);
    const err = t.throws(() => journal.load(), { instanceOf: JournalError });
    t.regex(err!.message, c.says);
    t.regex(err!.message, /\/var\/lib\/apqn-operator\/journal\.json/);
    store.text = null; // removed by an admin: the next look starts afresh
    t.notThrows(() => journal.load());
    t.is(journal.size, 0);
  });
}

test('entries written in an earlier boot are dropped (masks are the boot-time ones, queues probed online, no overrides, no mdevs), and said so once', (t) => {
  const store = new MemoryJournalStore();
  fill(new AgentJournal(store, { bootId: 'boot-1' }));
  const sameBoot = new AgentJournal(store, { bootId: 'boot-1' });
  t.is(sameBoot.size, 5);
  t.is(sameBoot.loadNote, undefined);
  const rebooted = new AgentJournal(store, { bootId: 'boot-2' });
  t.is(rebooted.size, 0);
  t.regex(rebooted.loadNote!, /before the node rebooted \(boot boot-1, now boot-2\): its 5 entries/);
  const unknownBoot = new AgentJournal(store); // a simulated node: no boot id
  t.is(unknownBoot.size, 5);
});

test('a journal kept in memory (no --state-dir) starts owning the mdevs it is seeded with', (t) => {
  const journal = new AgentJournal(new MemoryJournalStore(), { seedMdevs: new Map([[UUID, 'ns/a']]) });
  t.true(journal.ownsMdev(UUID));
});

test('readBootId: the kernel boot_id, undefined where there is none', (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'boot_id'), '0f3c8a52-9b1e-4e0d-8a43-5b8a1d2e7f60\n');
  t.is(readBootId(path.join(dir, 'boot_id')), '0f3c8a52-9b1e-4e0d-8a43-5b8a1d2e7f60');
  t.is(readBootId(path.join(dir, 'missing')), undefined);
});
