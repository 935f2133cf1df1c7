// The `apqn-operator` command: dispatches to one module per sub-command (src/commands/).
// Each command module exports `run(args): Promise<number>` (the exit code).

type CommandModule = { run(args: string[]): Promise<number>; summary: string };

const commands: Record<string, () => Promise<CommandModule>> = {
  sim: () => import('./commands/sim.js'),
  controlplane: () => import('./commands/controlplane.js'),
  dev: () => import('./commands/dev.js'),
  controller: () => import('./commands/controller.js'),
  agent: () => import('./commands/agent.js'),
};

function usage(): string {
  return [
    'usage: apqn-operator <command> [flags]',
    '',
    'commands:',
    '  controller    the cluster reconcile loop',
    '  agent         the node agent (one per node)',
    '  dev           a local real control plane + controller + simulated nodes',
    '  sim           a shell over the simulated AP bus (virtual sysfs)',
    '  controlplane  build and start only the local control plane',
    '',
    'Run `apqn-operator <command> --help` for a command\'s flags.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`apqn-operator: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  const mod = await load();
  return mod.run(rest);
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`apqn-operator: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
