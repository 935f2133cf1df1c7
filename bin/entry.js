// Which code the commands in bin/ run: the compiled JavaScript of dist/ or the TypeScript
// sources of src/ through tsx. The rule, in order:
//
//   1. APQN_RUN=dist  runs dist/ (built by `npm run build`); an error if it is not built.
//      APQN_RUN=src   runs src/ through tsx; an error if there is no src/ or no tsx.
//   2. Otherwise, src/cli.ts beside bin/ means a checkout of the repository: run src/ through
//      tsx, so a command started from a checkout (`npm start`, the tests that spawn
//      bin/apqn-operator.js, `npm link`) always runs the current sources, never a dist/ left
//      behind by an earlier build.
//   3. No src/ means an installed package or the image (package.json "files" and the Dockerfile
//      ship dist/ without src/): run dist/, and tsx (a dev dependency) is never loaded.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);

/**
 * Imports the module of `distPath` or `srcPath` (relative to the package root) by the rule
 * above and returns it.
 */
export async function load(distPath, srcPath) {
  const dist = new URL(distPath, root);
  const src = new URL(srcPath, root);
  const mode = process.env.APQN_RUN || (existsSync(src) ? 'src' : 'dist');
  if (mode === 'dist') {
    if (!existsSync(dist)) {
      fail(`${fileURLToPath(dist)} is missing: run \`npm run build\` (or unset APQN_RUN to run the sources)`);
    }
    return import(dist.href);
  }
  if (mode !== 'src') fail(`APQN_RUN must be "dist" or "src", not "${mode}"`);
  if (!existsSync(src)) fail(`${fileURLToPath(src)} is missing: this is not a checkout; unset APQN_RUN`);
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    fail('running the TypeScript sources needs tsx, a dev dependency: run `npm ci` (or build with `npm run build` and set APQN_RUN=dist)');
  }
  register();
  return import(src.href);
}

function fail(message) {
  process.stderr.write(`apqn-operator: ${message}\n`);
  process.exit(1);
}
