// The plugin's commands and their flags, in one table: main.ts parses with it, complete.ts
// completes from it, so the two cannot disagree about which flag a command takes.
import type { FlagDef } from './args.js';

/** Flags every command takes. */
export const COMMON_FLAGS: readonly FlagDef[] = [
  { name: 'kubeconfig', value: true },
  { name: 'color', value: true },
  { name: 'output', short: 'o', value: true },
  { name: 'help', short: 'h' },
];

const NAMESPACE: FlagDef = { name: 'namespace', short: 'n', value: true };

export interface CommandSpec {
  summary: string;
  /** Flags besides the common ones. */
  flags: readonly FlagDef[];
}

export const COMMANDS = {
  matrix: { summary: 'adapter x domain grid of a node', flags: [] },
  status: { summary: 'reservations and claims, one line each', flags: [NAMESPACE, { name: 'all-namespaces', short: 'A' }] },
  plan: { summary: 'what applying reservations from a file would do', flags: [{ name: 'filename', short: 'f', value: true }, NAMESPACE] },
  capacity: { summary: 'what is left to reserve, per node and adapter', flags: [] },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

export function isCommand(name: string): name is CommandName {
  return Object.prototype.hasOwnProperty.call(COMMANDS, name);
}
