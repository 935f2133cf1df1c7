// Command-line flags the kubectl way: short flags (`-o json`, `-n ns`, `-A`, `-f file`), long
// ones (`--output=json`, `--namespace ns`), `--kubeconfig`. Unknown flags are errors, so a typo
// never silently changes what is shown.

export class UsageError extends Error {}

export interface FlagDef {
  /** Long name, e.g. 'output'. */
  name: string;
  /** One-letter alias, e.g. 'o'. */
  short?: string;
  /** Takes a value (else a boolean switch). */
  value?: boolean;
}

export interface ParsedArgs {
  flags: Map<string, string | true>;
  positional: string[];
}

export function parseArgs(args: readonly string[], defs: readonly FlagDef[]): ParsedArgs {
  const byLong = new Map(defs.map((d) => [d.name, d]));
  const byShort = new Map(defs.filter((d) => d.short).map((d) => [d.short!, d]));
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    let def: FlagDef | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      def = byLong.get(name);
      if (!def) throw new UsageError(`unknown flag --${name}`);
      if (eq >= 0) inline = arg.slice(eq + 1);
    } else if (arg.startsWith('-') && arg.length > 1) {
      const letter = arg[1]!;
      def = byShort.get(letter);
      if (!def) throw new UsageError(`unknown flag -${letter}`);
      if (arg.length > 2) inline = arg[2] === '=' ? arg.slice(3) : arg.slice(2);
    } else {
      positional.push(arg);
      continue;
    }
    if (!def.value) {
      if (inline !== undefined) throw new UsageError(`--${def.name} takes no value`);
      flags.set(def.name, true);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || value === '') throw new UsageError(`--${def.name} needs a value`);
    flags.set(def.name, value);
  }
  return { flags, positional };
}

export function stringFlag(parsed: ParsedArgs, name: string): string | undefined {
  const v = parsed.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function boolFlag(parsed: ParsedArgs, name: string): boolean {
  return parsed.flags.get(name) === true;
}
