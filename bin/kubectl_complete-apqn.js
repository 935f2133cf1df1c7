#!/usr/bin/env node
// Shell completion for `kubectl apqn …`: kubectl (1.26 and later) runs the executable
// kubectl_complete-apqn from PATH with the words after `kubectl apqn` and shows what it prints
// (cobra's __complete format). Put it on PATH beside kubectl-apqn.
import { load } from './entry.js';

const { main } = await load('dist/kubectl-apqn/main.js', 'src/kubectl-apqn/main.ts');
process.exitCode = await main(['__complete', ...process.argv.slice(2)]);
