// The agent's journal: its own record, kept on the node, of what it changed on the AP bus and
// must hand back — the value a mask bit or a queue's driver_override had before the agent first
// changed it, the host queues it cordoned (set offline) to move them, and the mdevs it owns.
// It is written BEFORE the change it covers (write a temp
// file, fsync, rename, fsync the directory), so whatever the agent does to the bus, a record of
// how to undo it is already on disk; an entry is dropped once the bus shows the original value
// again and the spec no longer wants otherwise.
//
// Why the agent keeps it and does not go by the spec: the spec says what the controller wants
// NOW. A spec entry can disappear between the agent's reading of it and the change landing
// (create → delete at once), and the `original` a spec carries was computed from a status that
// may have been stale. Neither may decide what the host gets back. Nor may the status: any
// writer of the APNodeState could claim an mdev for the agent. The journal lives under a host
// path only the agent writes (--state-dir; a temp dir per simulated node in `dev` and tests).
//
// Format (JSON, one file `journal.json`):
//   {"version":1, "bootId":"…",
//    "maskBits":[{"mask":"aqmask","id":"0004","original":true,"reservations":["ns/a"]}],
//    "overrides":[{"apqn":"05.0004","original":"","reservations":["ns/a"]}],
//    "cordons":[{"apqn":"05.0005","reservations":["ns/a"]}],
//    "mdevs":[{"uuid":"…","reservation":"ns/a"}]}
// `cordons` is optional (journals from before cordoning have none).
// `bootId` is the kernel's boot_id when the entries were recorded: after a reboot the masks are
// the boot-time ones and there are no overrides and no mdevs, so older entries describe nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type Apqn,
  apqnIndex,
  formatAdapterId,
  formatApqn,
  formatDomainId,
  parseAdapterId,
  parseApqn,
  parseDomainId,
  parseMdevUuid,
} from '../apbus/ids.js';
import type { MaskKind } from '../apbus/backend.js';

export const JOURNAL_FILE = 'journal.json';
const VERSION = 1;

/** A mask bit the agent changed: `original` is its value (true = set, host) before the change. */
export interface MaskBitRecord {
  readonly mask: MaskKind;
  readonly bit: number;
  readonly original: boolean;
  /** Reservations the change was (last) made for: they are reported Releasing while it is undone. */
  readonly reservations: readonly string[];
}

/** A queue whose driver_override the agent changed: `original` is the value before ('' = none). */
export interface OverrideRecord {
  readonly apqn: Apqn;
  readonly index: number;
  readonly original: string;
  readonly reservations: readonly string[];
}

/** A host queue the agent set offline (zcrypt `online` 0) to move it: online again if the move
 *  is no longer wanted while it is still on the host driver. */
export interface CordonRecord {
  readonly apqn: Apqn;
  readonly index: number;
  readonly reservations: readonly string[];
}

export interface MdevRecord {
  readonly uuid: string;
  readonly reservation: string | undefined;
}

/** Where the journal's text lives. load() answers null when there is none yet. */
export interface JournalStore {
  readonly location: string;
  load(): string | null;
  /** Replaces the whole text, atomically: after a crash the old or the new text is there. */
  save(text: string): void;
}

/** The journal cannot be read, parsed or written; the agent changes nothing until it can. */
export class JournalError extends Error {
  constructor(
    message: string,
    readonly location: string,
  ) {
    super(message);
    this.name = 'JournalError';
  }
}

const maskKey = (mask: MaskKind, bit: number) => `${mask}:${bit}`;
const formatBit = (mask: MaskKind, bit: number) => (mask === 'apmask' ? formatAdapterId(bit) : formatDomainId(bit));

interface Entries {
  readonly maskBits: Map<string, MaskBitRecord>;
  readonly overrides: Map<number, OverrideRecord>;
  readonly cordons: Map<number, CordonRecord>;
  readonly mdevs: Map<string, MdevRecord>;
}

const copyOf = (e: Entries): Entries => ({ maskBits: new Map(e.maskBits), overrides: new Map(e.overrides), cordons: new Map(e.cordons), mdevs: new Map(e.mdevs) });
const emptyEntries = (): Entries => ({ maskBits: new Map(), overrides: new Map(), cordons: new Map(), mdevs: new Map() });

/** Edits made together and written once (AgentJournal.commit). */
export class JournalDraft {
  #changed = false;
  readonly notes: string[] = [];
  constructor(readonly entries: Entries) {}

  get changed(): boolean {
    return this.#changed;
  }

  setMaskBit(record: MaskBitRecord): void {
    const old = this.entries.maskBits.get(maskKey(record.mask, record.bit));
    if (old && old.original === record.original && sameList(old.reservations, record.reservations)) return;
    this.entries.maskBits.set(maskKey(record.mask, record.bit), { ...record, reservations: [...record.reservations].sort() });
    this.#note(`${old ? 'update' : 'record'} ${record.mask} ${formatBit(record.mask, record.bit)} (original ${record.original ? 'set' : 'cleared'})`);
  }

  deleteMaskBit(mask: MaskKind, bit: number): void {
    if (this.entries.maskBits.delete(maskKey(mask, bit))) this.#note(`forget ${mask} ${formatBit(mask, bit)}`);
  }

  setOverride(record: OverrideRecord): void {
    const old = this.entries.overrides.get(record.index);
    if (old && old.original === record.original && sameList(old.reservations, record.reservations)) return;
    this.entries.overrides.set(record.index, { ...record, reservations: [...record.reservations].sort() });
    this.#note(`${old ? 'update' : 'record'} driver_override ${formatApqn(record.apqn)} (original ${JSON.stringify(record.original)})`);
  }

  deleteOverride(index: number): void {
    const old = this.entries.overrides.get(index);
    if (old && this.entries.overrides.delete(index)) this.#note(`forget driver_override ${formatApqn(old.apqn)}`);
  }

  setCordon(record: CordonRecord): void {
    const old = this.entries.cordons.get(record.index);
    if (old && sameList(old.reservations, record.reservations)) return;
    this.entries.cordons.set(record.index, { ...record, reservations: [...record.reservations].sort() });
    this.#note(`${old ? 'update' : 'record'} cordon of ${formatApqn(record.apqn)}`);
  }

  deleteCordon(index: number): void {
    const old = this.entries.cordons.get(index);
    if (old && this.entries.cordons.delete(index)) this.#note(`forget cordon of ${formatApqn(old.apqn)}`);
  }

  setMdev(uuid: string, reservation: string | undefined): void {
    const old = this.entries.mdevs.get(uuid);
    if (old && old.reservation === reservation) return;
    this.entries.mdevs.set(uuid, { uuid, reservation });
    this.#note(`${old ? 'update' : 'own'} mdev ${uuid}`);
  }

  deleteMdev(uuid: string): void {
    if (this.entries.mdevs.delete(uuid)) this.#note(`forget mdev ${uuid}`);
  }

  #note(text: string): void {
    this.#changed = true;
    this.notes.push(text);
  }
}

export interface AgentJournalOptions {
  /** The kernel's boot_id now (undefined: unknown, entries are never discarded for a reboot). */
  bootId?: string;
  /** Mdevs to own when the store has no journal yet (a journal kept only in memory). */
  seedMdevs?: ReadonlyMap<string, string | undefined>;
}

export class AgentJournal {
  readonly #store: JournalStore;
  readonly #bootId: string | undefined;
  readonly #seed: ReadonlyMap<string, string | undefined> | undefined;
  #entries: Entries | undefined;
  #mdevView: ReadonlyMap<string, string | undefined> | undefined;
  /** Said once when the journal was loaded (entries discarded after a reboot). */
  loadNote: string | undefined;

  constructor(store: JournalStore, options: AgentJournalOptions = {}) {
    this.#store = store;
    this.#bootId = options.bootId;
    this.#seed = options.seedMdevs;
  }

  get location(): string {
    return this.#store.location;
  }

  /** Reads the store the first time; throws JournalError when it cannot be read or understood
   *  (the next call tries again: an admin may have fixed or removed the file). */
  load(): void {
    if (this.#entries) return;
    let text: string | null;
    try {
      text = this.#store.load();
    } catch (err) {
      throw new JournalError(`cannot read the agent's journal ${this.location}: ${why(err)}`, this.location);
    }
    if (text === null) {
      const entries = emptyEntries();
      for (const [uuid, reservation] of this.#seed ?? []) entries.mdevs.set(uuid, { uuid, reservation });
      this.#entries = entries;
      return;
    }
    const parsed = parseJournal(text, this.location);
    if (this.#bootId !== undefined && parsed.bootId !== undefined && parsed.bootId !== this.#bootId) {
      const n = parsed.entries.maskBits.size + parsed.entries.overrides.size + parsed.entries.cordons.size + parsed.entries.mdevs.size;
      this.loadNote = `the journal was written before the node rebooted (boot ${parsed.bootId}, now ${this.#bootId}): its ${n} entries describe a bus that no longer exists and are dropped`;
      this.#entries = emptyEntries();
      return;
    }
    this.#entries = parsed.entries;
  }

  #loaded(): Entries {
    this.load();
    return this.#entries!;
  }

  maskBits(): IterableIterator<MaskBitRecord> {
    return this.#loaded().maskBits.values();
  }

  maskBit(mask: MaskKind, bit: number): MaskBitRecord | undefined {
    return this.#loaded().maskBits.get(maskKey(mask, bit));
  }

  overrides(): IterableIterator<OverrideRecord> {
    return this.#loaded().overrides.values();
  }

  override(index: number): OverrideRecord | undefined {
    return this.#loaded().overrides.get(index);
  }

  cordons(): IterableIterator<CordonRecord> {
    return this.#loaded().cordons.values();
  }

  cordon(index: number): CordonRecord | undefined {
    return this.#loaded().cordons.get(index);
  }

  /** Mdevs the agent owns: uuid → reservation. */
  mdevs(): ReadonlyMap<string, string | undefined> {
    this.#mdevView ??= new Map([...this.#loaded().mdevs.values()].map((m) => [m.uuid, m.reservation]));
    return this.#mdevView;
  }

  ownsMdev(uuid: string): boolean {
    return this.#loaded().mdevs.has(uuid);
  }

  get size(): number {
    const e = this.#loaded();
    return e.maskBits.size + e.overrides.size + e.cordons.size + e.mdevs.size;
  }

  /** A copy to edit; nothing changes until commit(). */
  draft(): JournalDraft {
    return new JournalDraft(copyOf(this.#loaded()));
  }

  /** Writes the draft (when it changed anything) and makes it the journal. On a failed write
   *  the journal stays as it was and JournalError is thrown: the change it was to cover must
   *  not be made. */
  commit(draft: JournalDraft): void {
    if (!draft.changed) return;
    const text = formatJournal(draft.entries, this.#bootId);
    try {
      this.#store.save(text);
    } catch (err) {
      throw new JournalError(`cannot write the agent's journal ${this.location}: ${why(err)}`, this.location);
    }
    this.#entries = draft.entries;
    this.#mdevView = undefined;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function why(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function formatJournal(entries: Entries, bootId: string | undefined): string {
  const maskBits = [...entries.maskBits.values()]
    .sort((x, y) => x.mask.localeCompare(y.mask) || x.bit - y.bit)
    .map((b) => ({ mask: b.mask, id: formatBit(b.mask, b.bit), original: b.original, reservations: [...b.reservations] }));
  const overrides = [...entries.overrides.values()]
    .sort((x, y) => x.index - y.index)
    .map((o) => ({ apqn: formatApqn(o.apqn), original: o.original, reservations: [...o.reservations] }));
  const cordons = [...entries.cordons.values()]
    .sort((x, y) => x.index - y.index)
    .map((c) => ({ apqn: formatApqn(c.apqn), reservations: [...c.reservations] }));
  const mdevs = [...entries.mdevs.values()]
    .sort((x, y) => x.uuid.localeCompare(y.uuid))
    .map((m) => ({ uuid: m.uuid, ...(m.reservation ? { reservation: m.reservation } : {}) }));
  const doc = { version: VERSION, ...(bootId !== undefined ? { bootId } : {}), maskBits, overrides, cordons, mdevs };
  // One entry per line: a person reading the file on the node sees what the agent will undo.
  const lines = (list: unknown[]) => (list.length ? `[\n  ${list.map((x) => JSON.stringify(x)).join(',\n  ')}\n ]` : '[]');
  return `{"version":${doc.version},${bootId !== undefined ? `"bootId":${JSON.stringify(bootId)},` : ''}\n "maskBits":${lines(maskBits)},\n "overrides":${lines(overrides)},\n "cordons":${lines(cordons)},\n "mdevs":${lines(mdevs)}\n}\n`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function reservationsOf(v: unknown): string[] | null {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((r) => typeof r === 'string')) return null;
  return v as string[];
}

/** Strict: a journal the agent does not fully understand is not acted on. */
export function parseJournal(text: string, location: string): { bootId: string | undefined; entries: Entries } {
  const bad = (what: string) => new JournalError(`the agent's journal ${location} is not valid (${what}); fix or remove it — the agent changes nothing on the bus meanwhile`, location);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(why(err));
  }
  if (!isRecord(doc)) throw bad('not an object');
  if (doc.version !== VERSION) throw bad(`version ${JSON.stringify(doc.version)}, expected ${VERSION}`);
  if (doc.bootId !== undefined && typeof doc.bootId !== 'string') throw bad('bootId is not a string');
  const entries = emptyEntries();
  const list = (field: string): unknown[] => {
    const v = doc[field];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw bad(`${field} is not a list`);
    return v;
  };
  for (const [i, e] of list('maskBits').entries()) {
    const where = `maskBits[${i}]`;
    if (!isRecord(e) || (e.mask !== 'apmask' && e.mask !== 'aqmask') || typeof e.original !== 'boolean' || typeof e.id !== 'string') throw bad(where);
    const reservations = reservationsOf(e.reservations);
    if (!reservations) throw bad(`${where}.reservations`);
    let bit: number;
    try {
      bit = e.mask === 'apmask' ? parseAdapterId(e.id) : parseDomainId(e.id);
    } catch (err) {
      throw bad(`${where}: ${why(err)}`);
    }
    entries.maskBits.set(maskKey(e.mask, bit), { mask: e.mask, bit, original: e.original, reservations });
  }
  /** One entry about a queue: `{"apqn": "05.0004", "reservations": [...], ...}`. */
  const queueEntry = (e: unknown, where: string, valid: (e: Record<string, unknown>) => boolean) => {
    if (!isRecord(e) || typeof e.apqn !== 'string' || !valid(e)) throw bad(where);
    const reservations = reservationsOf(e.reservations);
    if (!reservations) throw bad(`${where}.reservations`);
    let apqn: Apqn;
    try {
      apqn = parseApqn(e.apqn);
    } catch (err) {
      throw bad(`${where}: ${why(err)}`);
    }
    return { entry: e, apqn, index: apqnIndex(apqn.adapter, apqn.domain), reservations };
  };
  for (const [i, e] of list('overrides').entries()) {
    const { entry, apqn, index, reservations } = queueEntry(e, `overrides[${i}]`, (x) => typeof x.original === 'string');
    entries.overrides.set(index, { apqn, index, original: entry.original as string, reservations });
  }
  for (const [i, e] of list('cordons').entries()) {
    const { apqn, index, reservations } = queueEntry(e, `cordons[${i}]`, () => true);
    entries.cordons.set(index, { apqn, index, reservations });
  }
  for (const [i, e] of list('mdevs').entries()) {
    const where = `mdevs[${i}]`;
    if (!isRecord(e) || typeof e.uuid !== 'string' || (e.reservation !== undefined && typeof e.reservation !== 'string')) throw bad(where);
    let uuid: string;
    try {
      uuid = parseMdevUuid(e.uuid);
    } catch (err) {
      throw bad(`${where}: ${why(err)}`);
    }
    entries.mdevs.set(uuid, { uuid, reservation: (e.reservation as string | undefined) || undefined });
  }
  return { bootId: doc.bootId as string | undefined, entries };
}

/** A journal kept in memory only: it survives a restart of the agent object (tests keep the
 *  store across restarts, as the node keeps the file), not of the process. */
export class MemoryJournalStore implements JournalStore {
  text: string | null = null;
  saves = 0;
  constructor(readonly location = '(in memory)') {}
  load(): string | null {
    return this.text;
  }
  save(text: string): void {
    this.text = text;
    this.saves++;
  }
}

/** `<dir>/journal.json`, replaced atomically: the new text goes to a temp file in the same
 *  directory, is fsynced, renamed over the old one, and the directory is fsynced — after a
 *  crash or power loss the file holds the old or the new journal, never a mix. */
export class FileJournalStore implements JournalStore {
  readonly location: string;
  readonly #dir: string;
  #dirReady = false;

  constructor(dir: string) {
    this.#dir = path.resolve(dir);
    this.location = path.join(this.#dir, JOURNAL_FILE);
  }

  load(): string | null {
    try {
      return fs.readFileSync(this.location, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  save(text: string): void {
    if (!this.#dirReady) {
      fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      // Temp files of writes a crash cut short: never renamed, so never the journal.
      for (const name of fs.readdirSync(this.#dir)) if (name.startsWith(`.${JOURNAL_FILE}.`) && name.endsWith('.tmp')) fs.rmSync(path.join(this.#dir, name), { force: true });
      this.#dirReady = true;
    }
    const temp = path.join(this.#dir, `.${JOURNAL_FILE}.${process.pid}.tmp`);
    const fd = fs.openSync(temp, 'w', 0o600);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, this.location);
    const dirFd = fs.openSync(this.#dir, 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  }
}

/** The running kernel's boot_id (changes with every boot), or undefined where there is none. */
export function readBootId(file = '/proc/sys/kernel/random/boot_id'): string | undefined {
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    return id || undefined;
  } catch {
    return undefined;
  }
}
