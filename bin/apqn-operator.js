#!/usr/bin/env node
// The `apqn-operator` command. It runs the sources through tsx in a checkout and the compiled
// dist/ when installed or in the image; APQN_RUN=dist|src forces one. The rule and why are in
// bin/entry.js.
import { load } from './entry.js';

const { main } = await load('dist/cli.js', 'src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
