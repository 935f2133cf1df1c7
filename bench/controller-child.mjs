// The benchmark's controller child: `node [node flags] bench/controller-child.mjs <cli> controller …`
// runs the given apqn-operator entry (the compiled dist/src/cli.js, or src/cli.ts under tsx) and
// exits with its code as soon as it returns (after SIGTERM, once the controller has stopped), even
// if a handle (a socket, a timer) would keep the process alive: a process that exits by itself is
// what writes `--cpu-prof`'s profile, and a kill would lose it. Anything left open is logged, as a
// hint for whoever owns the controller.
import { pathToFileURL } from 'node:url';

const [cli, ...args] = process.argv.slice(2);
if (!cli) {
  process.stderr.write('usage: node bench/controller-child.mjs <path to cli.js or cli.ts> <command> [flags]\n');
  process.exit(2);
}
const { main } = await import(pathToFileURL(cli).href);
let code = 1;
try {
  code = await main(args);
} catch (err) {
  process.stderr.write(`controller-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}
const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
if (open.length) process.stderr.write(`${JSON.stringify({ level: 'info', component: 'bench', message: 'controller returned; still open at exit', open })}\n`);
process.exit(code);
