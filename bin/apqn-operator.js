#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so the installed command and `npm start`
// execute the same code the tests do.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
