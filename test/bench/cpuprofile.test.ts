// The benchmark's CPU profile summary: self and total time per function from a .cpuprofile.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import ts from 'typescript';
import { formatTopFunctions, sourceMapLocator, summarizeProfile, urlLine, type CpuProfile } from '../../bench/cpuprofile.js';

const frame = (functionName: string, url = '', lineNumber = -1) => ({ functionName, url, lineNumber, columnNumber: 0, scriptId: '0' });

// (root) → main → work → work (recursion); (root) → (garbage collector); (root) → (idle).
// Samples 10 µs apart from t=10; the last one lasts until endTime (30 µs).
const profile = (): CpuProfile => ({
  nodes: [
    { id: 1, callFrame: frame('(root)'), hitCount: 0, children: [2, 5, 6] },
    { id: 2, callFrame: frame('main', 'file:///tmp/x/src/app.js', 0), hitCount: 1, children: [3] },
    { id: 3, callFrame: frame('work', 'file:///tmp/x/src/app.js', 9), hitCount: 1, children: [4] },
    { id: 4, callFrame: frame('work', 'file:///tmp/x/src/app.js', 9), hitCount: 2, children: [] },
    { id: 5, callFrame: frame('(garbage collector)'), hitCount: 1 },
    { id: 6, callFrame: frame('(idle)'), hitCount: 4 },
  ],
  startTime: 0,
  endTime: 100,
  samples: [3, 4, 4, 2, 5, 6, 6],
  timeDeltas: [10, 10, 10, 10, 10, 10, 10],
});

const byName = (s: ReturnType<typeof summarizeProfile>) => Object.fromEntries(s.functions.map((f) => [f.name, f]));

test('self time per function from the samples; total counts a recursive function once', (t) => {
  const s = summarizeProfile(profile(), (f) => urlLine(f, (u) => u.replace('file:///tmp/x/', '')));
  t.is(s.sampledUs, 90);
  t.is(s.busyUs, 50); // 40 µs idle (10 + the last sample's 30)
  t.is(s.samples, 7);
  const f = byName(s);
  t.deepEqual(f.work, { name: 'work', location: 'src/app.js:10', selfUs: 30, totalUs: 30 });
  t.deepEqual(f.main, { name: 'main', location: 'src/app.js:1', selfUs: 10, totalUs: 40 });
  t.is(f['(garbage collector)']!.selfUs, 10);
  t.is(f['(garbage collector)']!.location, '');
  t.false('(root)' in f);
  t.deepEqual(s.functions.map((x) => x.name), ['(idle)', 'work', 'main', '(garbage collector)']);
});

test('without samples, hitCount times the mean interval stands in', (t) => {
  const p = profile();
  delete p.samples;
  delete p.timeDeltas;
  p.startTime = 10; // 9 hits over 90 µs: 10 µs each
  const f = byName(summarizeProfile(p));
  t.is(f.work!.selfUs, 30);
  t.is(f.main!.totalUs, 40);
  t.is(f['(idle)']!.selfUs, 40);
});

test('the table: idle left out, most self time first, percentages of the busy time', (t) => {
  const text = formatTopFunctions(summarizeProfile(profile(), (f) => urlLine(f, (u) => u.replace('file:///tmp/x/', ''))), 2);
  const rows = text.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| function') && !l.startsWith('| ---'));
  t.deepEqual(rows, ['| work | src/app.js:10 | 0.00 s | 60.0 % | 60.0 % |', '| main | src/app.js:1 | 0.00 s | 20.0 % | 80.0 % |']);
  t.regex(text, /0\.00 s sampled, 0\.00 s busy/);
});

test('a real profile from node --cpu-prof names the busy function', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpuprofile-test-'));
  try {
    const script = path.join(dir, 'spin.mjs');
    fs.writeFileSync(script, 'function spinForAWhile() { const end = Date.now() + 300; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1); return x; }\nspinForAWhile();\n');
    const run = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-name=spin.cpuprofile', script], { encoding: 'utf8' });
    t.is(run.status, 0, run.stderr);
    const summary = summarizeProfile(JSON.parse(fs.readFileSync(path.join(dir, 'spin.cpuprofile'), 'utf8')) as CpuProfile, (f) => urlLine(f, (u) => path.basename(u)));
    const spin = summary.functions.find((f) => f.name === 'spinForAWhile');
    t.truthy(spin);
    t.is(spin!.location, 'spin.mjs:1');
    t.true(spin!.totalUs > 0.5 * summary.busyUs, `spinForAWhile total ${spin!.totalUs} µs of ${summary.busyUs} µs busy`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('through a source map, a compiled function is named at its TypeScript line', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpuprofile-map-'));
  try {
    const source = ['// a comment', 'type T = { a: number };', '', 'export function placed(x: T): number {', '  return x.a + 1;', '}', ''].join('\n');
    const out = ts.transpileModule(source, { compilerOptions: { sourceMap: true, module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 }, fileName: 'placed.ts' });
    fs.mkdirSync(path.join(dir, 'src'));
    fs.mkdirSync(path.join(dir, 'out'));
    fs.writeFileSync(path.join(dir, 'src/placed.ts'), source);
    fs.writeFileSync(path.join(dir, 'out/placed.js'), out.outputText);
    const map = JSON.parse(out.sourceMapText!) as { sources: string[] };
    map.sources = ['../src/placed.ts'];
    fs.writeFileSync(path.join(dir, 'out/placed.js.map'), JSON.stringify(map));
    const jsLine = out.outputText.split('\n').findIndex((l) => l.includes('function placed'));
    t.true(jsLine >= 0 && jsLine !== 3); // the type and comment lines are gone or moved
    const locate = sourceMapLocator((file) => path.relative(dir, file));
    const url = pathToFileURL(path.join(dir, 'out/placed.js')).href;
    t.is(locate({ functionName: 'placed', url, lineNumber: jsLine, columnNumber: 0 }), 'src/placed.ts:4');
    t.is(locate({ functionName: 'x', url: pathToFileURL(path.join(dir, 'nomap.js')).href, lineNumber: 6 }), 'nomap.js:7');
    t.is(locate({ functionName: 'y', url: 'node:internal/timers', lineNumber: 0 }), 'node:internal/timers:1');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
