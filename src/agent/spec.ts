// APNodeState.spec as the agent obeys it: the wire shape (string ids) checked and turned into
// numbers once per pass. A bad spec never throws: every problem becomes one sentence for the
// Synced condition, and the agent then changes nothing (a half-understood spec is not safe to
// apply). Semantics: /work/notes/agent-contract.md.
import type { BindingMode, InUsePolicy, NodeStateSpec } from '../api/types.js';
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
import type { MaskKind, MdevMatrix } from '../apbus/backend.js';

export interface WantedMaskBit {
  readonly kind: MaskKind;
  readonly bit: number;
  /** true: the host driver owns the row/column (bit set). */
  readonly host: boolean;
}

/** A queue's wanted driver in DriverOverride mode: 'vfio_ap', or back to the host (override cleared). */
export interface WantedOverride {
  readonly apqn: Apqn;
  readonly index: number;
  readonly driver: 'vfio_ap' | 'cex4queue';
}

export interface WantedQueueIntent {
  readonly apqn: Apqn;
  readonly reservation: string;
  readonly inUsePolicy: InUsePolicy;
  readonly drainTimeoutSeconds: number;
}

export interface WantedMdev {
  readonly uuid: string;
  readonly reservation: string;
  /** Ids ascending, de-duplicated. */
  readonly matrix: MdevMatrix;
}

export interface WantedState {
  readonly mode: BindingMode;
  readonly maskBits: readonly WantedMaskBit[];
  readonly overrides: readonly WantedOverride[];
  /** By apqnIndex. */
  readonly intents: ReadonlyMap<number, WantedQueueIntent>;
  readonly mdevs: readonly WantedMdev[];
}

/** A queue with no intent in the spec still gets a drain check: Wait, 300 s. */
export const DEFAULT_INTENT = { inUsePolicy: 'Wait' as InUsePolicy, drainTimeoutSeconds: 300 };

const POLICIES: readonly InUsePolicy[] = ['Wait', 'Fail', 'Force'];
const MODES: readonly BindingMode[] = ['Masks', 'DriverOverride'];

export interface NormalizedSpec {
  readonly wanted: WantedState;
  readonly problems: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function why(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `parse(value)`, or undefined with the reason recorded under `where` (a bad entry is skipped). */
function parsed<T>(parse: (text: string) => T, value: unknown, where: string, problems: string[]): T | undefined {
  try {
    return parse(value as string);
  } catch (err) {
    problems.push(`${where}: ${why(err)}`);
    return undefined;
  }
}

/** A list field: absent is empty; anything but an array is a problem. */
function listOf(spec: Record<string, unknown>, field: string, problems: string[]): unknown[] {
  const v = spec[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    problems.push(`spec.${field} must be a list`);
    return [];
  }
  return v;
}

function ids(list: unknown, parse: (t: string) => number, where: string, problems: string[]): number[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) {
    problems.push(`${where} must be a list of ids`);
    return [];
  }
  const out = new Set<number>();
  for (const item of list) {
    const id = parsed(parse, item, where, problems);
    if (id !== undefined) out.add(id);
  }
  return [...out].sort((a, b) => a - b);
}

export function normalizeSpec(raw: NodeStateSpec | undefined | null): NormalizedSpec {
  const problems: string[] = [];
  const spec: Record<string, unknown> = isRecord(raw) ? raw : {};
  if (raw !== undefined && raw !== null && !isRecord(raw)) problems.push('spec must be an object');

  let mode: BindingMode = 'Masks';
  if (spec.bindingMode !== undefined && spec.bindingMode !== null) {
    if (MODES.includes(spec.bindingMode as BindingMode)) mode = spec.bindingMode as BindingMode;
    else problems.push(`spec.bindingMode ${JSON.stringify(spec.bindingMode)} is not one of ${MODES.join(', ')}`);
  }

  // Mask bits: one wanted value per bit.
  const maskBits: WantedMaskBit[] = [];
  for (const kind of ['apmask', 'aqmask'] as const) {
    const parse = kind === 'apmask' ? parseAdapterId : parseDomainId;
    const seen = new Map<number, boolean>();
    for (const [i, entry] of listOf(spec, kind, problems).entries()) {
      const where = `spec.${kind}[${i}]`;
      if (!isRecord(entry) || typeof entry.host !== 'boolean') {
        problems.push(`${where} must be {id, host: true|false}`);
        continue;
      }
      const bit = parsed(parse, entry.id, where, problems);
      if (bit === undefined) continue;
      const name = kind === 'apmask' ? formatAdapterId(bit) : formatDomainId(bit);
      const earlier = seen.get(bit);
      if (earlier !== undefined) {
        if (earlier !== entry.host) problems.push(`spec.${kind} lists bit ${name} as both host and not host`);
        continue;
      }
      seen.set(bit, entry.host);
      if (mode === 'DriverOverride' && !entry.host) {
        problems.push(`${kind} bit ${name} is to be cleared, but bindingMode DriverOverride needs both masks all ones`);
      }
      maskBits.push({ kind, bit, host: entry.host });
    }
  }

  // Overrides: one wanted driver per queue.
  const overrides: WantedOverride[] = [];
  const overrideAt = new Map<number, WantedOverride>();
  for (const [i, entry] of listOf(spec, 'overrides', problems).entries()) {
    const where = `spec.overrides[${i}]`;
    if (!isRecord(entry)) {
      problems.push(`${where} must be {apqn, driver}`);
      continue;
    }
    const apqn = parsed(parseApqn, entry.apqn, where, problems);
    if (apqn === undefined) continue;
    const driver = entry.driver;
    if (driver !== 'vfio_ap' && driver !== 'cex4queue') {
      problems.push(`${where}: driver ${JSON.stringify(driver)} is not vfio_ap or cex4queue`);
      continue;
    }
    if (driver === 'vfio_ap' && mode !== 'DriverOverride') {
      problems.push(`${where}: a vfio_ap driver_override needs bindingMode DriverOverride`);
    }
    const index = apqnIndex(apqn.adapter, apqn.domain);
    const earlier = overrideAt.get(index);
    if (earlier) {
      if (earlier.driver !== driver) problems.push(`spec.overrides lists ${formatApqn(apqn)} with two drivers`);
      continue;
    }
    const o: WantedOverride = { apqn, index, driver };
    overrideAt.set(index, o);
    overrides.push(o);
  }

  // Queue intents.
  const intents = new Map<number, WantedQueueIntent>();
  for (const [i, entry] of listOf(spec, 'queues', problems).entries()) {
    const where = `spec.queues[${i}]`;
    if (!isRecord(entry)) {
      problems.push(`${where} must be {apqn, reservation, inUsePolicy, drainTimeoutSeconds}`);
      continue;
    }
    const apqn = parsed(parseApqn, entry.apqn, where, problems);
    if (apqn === undefined) continue;
    const name = formatApqn(apqn);
    let ok = true;
    if (typeof entry.reservation !== 'string' || entry.reservation === '') {
      problems.push(`${where} (${name}): reservation must be a non-empty namespace/name`);
      ok = false;
    }
    const policy = entry.inUsePolicy ?? DEFAULT_INTENT.inUsePolicy;
    if (!POLICIES.includes(policy as InUsePolicy)) {
      problems.push(`${where} (${name}): inUsePolicy ${JSON.stringify(policy)} is not one of ${POLICIES.join(', ')}`);
      ok = false;
    }
    const timeout = entry.drainTimeoutSeconds ?? DEFAULT_INTENT.drainTimeoutSeconds;
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0) {
      problems.push(`${where} (${name}): drainTimeoutSeconds must be a number >= 0`);
      ok = false;
    }
    if (!ok) continue;
    const intent: WantedQueueIntent = {
      apqn,
      reservation: entry.reservation as string,
      inUsePolicy: policy as InUsePolicy,
      drainTimeoutSeconds: timeout as number,
    };
    const index = apqnIndex(apqn.adapter, apqn.domain);
    const earlier = intents.get(index);
    if (earlier) {
      if (
        earlier.reservation !== intent.reservation ||
        earlier.inUsePolicy !== intent.inUsePolicy ||
        earlier.drainTimeoutSeconds !== intent.drainTimeoutSeconds
      ) {
        problems.push(`spec.queues lists ${name} twice with different intents`);
      }
      continue;
    }
    intents.set(index, intent);
  }

  // Mdevs.
  const mdevs: WantedMdev[] = [];
  const byUuid = new Set<string>();
  for (const [i, entry] of listOf(spec, 'mdevs', problems).entries()) {
    const where = `spec.mdevs[${i}]`;
    if (!isRecord(entry)) {
      problems.push(`${where} must be {uuid, reservation, adapters, domains, controlDomains}`);
      continue;
    }
    const uuid = parsed(parseMdevUuid, entry.uuid, where, problems);
    if (uuid === undefined) continue;
    const at = `mdev ${uuid}`;
    if (byUuid.has(uuid)) {
      problems.push(`spec.mdevs lists ${uuid} twice`);
      continue;
    }
    byUuid.add(uuid);
    if (typeof entry.reservation !== 'string' || entry.reservation === '') {
      problems.push(`${at}: reservation must be a non-empty namespace/name`);
    }
    const before = problems.length;
    const matrix: MdevMatrix = {
      adapters: ids(entry.adapters, parseAdapterId, `${at} adapters`, problems),
      domains: ids(entry.domains, parseDomainId, `${at} domains`, problems),
      controlDomains: ids(entry.controlDomains, parseDomainId, `${at} controlDomains`, problems),
    };
    if (problems.length !== before) continue;
    mdevs.push({ uuid, reservation: String(entry.reservation ?? ''), matrix });
  }

  problems.push(...crossChecks(mode, maskBits, overrideAt, mdevs));
  return { wanted: { mode, maskBits, overrides, intents, mdevs }, problems };
}

/** Problems between fields: two mdevs sharing an APQN (the kernel forbids it), an mdev APQN the
 *  spec also gives to the host. Each names the first APQN found, which is enough to act on. */
function crossChecks(
  mode: BindingMode,
  maskBits: readonly WantedMaskBit[],
  overrides: ReadonlyMap<number, WantedOverride>,
  mdevs: readonly WantedMdev[],
): string[] {
  const problems: string[] = [];
  const hostAdapters = new Set(maskBits.filter((b) => b.kind === 'apmask' && b.host).map((b) => b.bit));
  const hostDomains = new Set(maskBits.filter((b) => b.kind === 'aqmask' && b.host).map((b) => b.bit));
  const owner = new Map<number, string>();
  for (const m of mdevs) {
    let overlap: string | null = null;
    let hostByMasks: string | null = null;
    let hostByOverride: string | null = null;
    for (const a of m.matrix.adapters) {
      for (const d of m.matrix.domains) {
        const index = a * 256 + d;
        const other = owner.get(index);
        if (other === undefined) owner.set(index, m.uuid);
        else if (overlap === null) overlap = `${formatApqn({ adapter: a, domain: d })} is in mdevs ${other} and ${m.uuid}`;
        if (hostByMasks === null && hostAdapters.has(a) && hostDomains.has(d)) hostByMasks = formatApqn({ adapter: a, domain: d });
        if (hostByOverride === null && overrides.get(index)?.driver === 'cex4queue') hostByOverride = formatApqn({ adapter: a, domain: d });
      }
    }
    if (overlap) problems.push(`spec.mdevs overlap: ${overlap}`);
    if (hostByMasks && mode === 'Masks') {
      problems.push(`mdev ${m.uuid} holds ${hostByMasks}, but spec.apmask and spec.aqmask give it to the host`);
    }
    if (hostByOverride) problems.push(`mdev ${m.uuid} holds ${hostByOverride}, but spec.overrides gives it to cex4queue`);
  }
  return problems;
}

/** Problems with a spec (bad ids, overlapping mdevs, unknown policy …); empty when it is fine. */
export function validateSpec(spec: NodeStateSpec): string[] {
  return normalizeSpec(spec).problems;
}

/** Every reservation the spec names. */
export function specReservations(wanted: WantedState): string[] {
  const names = new Set<string>();
  for (const m of wanted.mdevs) if (m.reservation) names.add(m.reservation);
  for (const q of wanted.intents.values()) names.add(q.reservation);
  return [...names].sort();
}
