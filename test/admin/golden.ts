// Golden files for admin-facing output (test/golden/): the text is the contract, so a test
// compares it whole. APQN_UPDATE_GOLDEN=1 rewrites the files instead; review the diff before
// committing it.
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

export const GOLDEN_DIR = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..', 'golden');

export const updatingGoldens = process.env.APQN_UPDATE_GOLDEN === '1';

/** Compares `actual` with test/golden/<name> (or writes it when updating). */
export function matchGolden(t: ExecutionContext, name: string, actual: string): void {
  const file = nodePath.join(GOLDEN_DIR, name);
  if (updatingGoldens) {
    fs.mkdirSync(nodePath.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    t.pass(`wrote ${name}`);
    return;
  }
  if (!fs.existsSync(file)) {
    t.fail(`golden file test/golden/${name} is missing: run the test with APQN_UPDATE_GOLDEN=1 and review it`);
    return;
  }
  t.is(actual, fs.readFileSync(file, 'utf8'), `output differs from test/golden/${name}`);
}
