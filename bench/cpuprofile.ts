// Summarises a V8 CPU profile (the `.cpuprofile` JSON that `node --cpu-prof` writes on exit):
// where the time went, per function, as self time (samples whose top frame is the function) and
// total time (samples with the function anywhere on the stack, counted once under recursion).
//
// The profile is a call tree: `nodes` (id, callFrame, hitCount, children ids), and the samples
// in time order (`samples`: the node id on top of the stack; `timeDeltas`: µs since the previous
// sample). A sample lasts until the next one (the last until `endTime`), as DevTools reads it.
// Without samples, hitCount × the mean interval stands in.
import * as fs from 'node:fs';
import { SourceMap } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CallFrame {
  functionName: string;
  url: string;
  /** 0-based, as V8 reports it; -1 when unknown. */
  lineNumber: number;
  columnNumber?: number;
  scriptId?: string | number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface FunctionTime {
  /** The function's name, `(anonymous)` for an unnamed one; V8's own entries keep theirs: `(garbage collector)`, `(program)`, `(idle)`. */
  name: string;
  /** Where it is, from `locate` (by default `url:line`, 1-based); empty for V8's own entries. */
  location: string;
  /** µs with this function on top of the stack. */
  selfUs: number;
  /** µs with this function anywhere on the stack. */
  totalUs: number;
}

export interface ProfileSummary {
  /** µs covered by samples (the profile's span). */
  sampledUs: number;
  /** µs not `(idle)`: what the percentages are of. */
  busyUs: number;
  samples: number;
  /** Every function, most self time first. */
  functions: FunctionTime[];
}

/** V8's pseudo-frames: not functions of the program. */
const IDLE = '(idle)';
const ROOT = '(root)';

function frameKey(f: CallFrame): string {
  return `${f.functionName}\u0000${f.url}\u0000${f.lineNumber}\u0000${f.columnNumber ?? -1}`;
}

/** Time (µs) per node id on top of the stack. */
function selfTimes(profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0 && deltas.length === samples.length) {
    let at = profile.startTime;
    const stamps = deltas.map((d) => (at += d));
    for (let i = 0; i < samples.length; i++) {
      const until = i + 1 < samples.length ? stamps[i + 1]! : Math.max(profile.endTime, stamps[i]!);
      const duration = Math.max(0, until - stamps[i]!);
      self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + duration);
    }
    return self;
  }
  const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const interval = hits > 0 ? Math.max(0, profile.endTime - profile.startTime) / hits : 0;
  for (const n of profile.nodes) if (n.hitCount) self.set(n.id, n.hitCount * interval);
  return self;
}

/** `url:line` with a 1-based line, the URL shortened by `shorten`. */
export function urlLine(f: CallFrame, shorten: (url: string) => string = (u) => u): string {
  return `${shorten(f.url)}${f.lineNumber >= 0 ? `:${f.lineNumber + 1}` : ''}`;
}

/**
 * A `locate` for compiled code: the function's place in its TypeScript source, through the
 * `.js.map` next to the file when there is one (`shorten` makes the path short), else `url:line`.
 */
export function sourceMapLocator(shorten: (file: string) => string = (f) => f): (frame: CallFrame) => string {
  const maps = new Map<string, SourceMap | null>();
  const asPath = (u: string) => (u.startsWith('file://') ? fileURLToPath(u) : u);
  return (f) => {
    if (!f.url.startsWith('file://')) return urlLine(f);
    const file = fileURLToPath(f.url);
    let map = maps.get(file);
    if (map === undefined) {
      try {
        map = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8')));
      } catch {
        map = null;
      }
      maps.set(file, map);
    }
    if (map && f.lineNumber >= 0) {
      const entry = map.findEntry(f.lineNumber, f.columnNumber ?? 0) as { originalSource?: string; originalLine?: number };
      if (entry.originalSource && entry.originalLine !== undefined) {
        const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource);
        return `${shorten(source)}:${entry.originalLine + 1}`;
      }
    }
    return urlLine(f, (u) => shorten(asPath(u)));
  };
}

/** `locate` names where a function is (called only for frames with a URL): e.g. through a source map. */
export function summarizeProfile(profile: CpuProfile, locate: (frame: CallFrame) => string = (f) => urlLine(f)): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = selfTimes(profile);
  // The root: the node no other node lists as a child (V8 puts it first).
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const roots = profile.nodes.filter((n) => !childIds.has(n.id));

  // Subtree time per node (post-order, iteratively: stacks can be deep).
  const subtree = new Map<number, number>();
  const order: number[] = [];
  const visit: number[] = roots.map((r) => r.id);
  while (visit.length) {
    const id = visit.pop()!;
    order.push(id);
    for (const c of byId.get(id)?.children ?? []) visit.push(c);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const id = order[i]!;
    const n = byId.get(id)!;
    subtree.set(id, (self.get(id) ?? 0) + (n.children ?? []).reduce((a, c) => a + (subtree.get(c) ?? 0), 0));
  }

  // Per function: self time summed over its nodes; total time from its outermost nodes only
  // (a recursive call's subtree is already inside its caller's).
  const fns = new Map<string, FunctionTime>();
  const fnOf = (f: CallFrame): FunctionTime => {
    const key = frameKey(f);
    let t = fns.get(key);
    if (!t) {
      t = { name: f.functionName || '(anonymous)', location: f.url ? locate(f) : '', selfUs: 0, totalUs: 0 };
      fns.set(key, t);
    }
    return t;
  };
  const onStack = new Map<string, number>();
  const walk: Array<{ id: number; leaving: boolean }> = roots.map((r) => ({ id: r.id, leaving: false }));
  while (walk.length) {
    const { id, leaving } = walk.pop()!;
    const n = byId.get(id);
    if (!n) continue;
    const key = frameKey(n.callFrame);
    if (leaving) {
      onStack.set(key, onStack.get(key)! - 1);
      continue;
    }
    const fn = fnOf(n.callFrame);
    fn.selfUs += self.get(id) ?? 0;
    if (!onStack.get(key)) fn.totalUs += subtree.get(id) ?? 0;
    onStack.set(key, (onStack.get(key) ?? 0) + 1);
    walk.push({ id, leaving: true });
    for (const c of n.children ?? []) walk.push({ id: c, leaving: false });
  }

  const sampledUs = roots.reduce((a, r) => a + (subtree.get(r.id) ?? 0), 0);
  const idleUs = [...fns.values()].filter((f) => f.name === IDLE).reduce((a, f) => a + f.selfUs, 0);
  const functions = [...fns.values()].filter((f) => f.name !== ROOT).sort((a, b) => b.selfUs - a.selfUs || b.totalUs - a.totalUs);
  return { sampledUs, busyUs: sampledUs - idleUs, samples: profile.samples?.length ?? 0, functions };
}

/** The top functions by self time (idle left out), as a Markdown table; percentages of busy time. */
export function formatTopFunctions(summary: ProfileSummary, top = 15): string {
  const pct = (us: number) => (summary.busyUs > 0 ? `${((100 * us) / summary.busyUs).toFixed(1)} %` : '—');
  const sec = (us: number) => `${(us / 1e6).toFixed(2)} s`;
  const lines = [
    `${sec(summary.sampledUs)} sampled, ${sec(summary.busyUs)} busy (not idle); top ${top} functions by self time, in % of the busy time:`,
    '',
    '| function | where | self | self % | total % |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const f of summary.functions.filter((f) => f.name !== IDLE).slice(0, top)) {
    lines.push(`| ${f.name.replace(/\|/g, '\\|')} | ${f.location || '—'} | ${sec(f.selfUs)} | ${pct(f.selfUs)} | ${pct(f.totalUs)} |`);
  }
  return lines.join('\n');
}
