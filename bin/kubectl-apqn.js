#!/usr/bin/env node
// The `kubectl apqn` plugin: kubectl runs this executable (kubectl-apqn on PATH) for
// `kubectl apqn …`. Like bin/apqn-operator.js it runs the sources through tsx in a checkout and
// the compiled dist/ when installed; APQN_RUN=dist|src forces one (rule in bin/entry.js).
import { load } from './entry.js';

const { main } = await load('dist/kubectl-apqn/main.js', 'src/kubectl-apqn/main.ts');
process.exitCode = await main(process.argv.slice(2));
