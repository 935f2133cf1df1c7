#!/usr/bin/env node
// The `kubectl apqn` plugin: kubectl runs this executable (kubectl-apqn on PATH) for
// `kubectl apqn …`. Runs the TypeScript sources through tsx, like bin/apqn-operator.js.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/kubectl-apqn/main.ts');
process.exitCode = await main(process.argv.slice(2));
