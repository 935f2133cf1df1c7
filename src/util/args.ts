// Minimal flag parsing shared by the sub-commands: `--name value`, `--name=value`, boolean
// `--flag`. Unknown flags are errors, so a typo never silently changes behaviour.

export interface FlagSpec {
  [name: string]: 'string' | 'boolean' | 'number';
}

export type ParsedFlags<S extends FlagSpec> = {
  [K in keyof S]?: S[K] extends 'boolean' ? boolean : S[K] extends 'number' ? number : string;
} & { _: string[] };

export class UsageError extends Error {}

export function parseFlags<S extends FlagSpec>(args: string[], spec: S): ParsedFlags<S> {
  const out: Record<string, unknown> & { _: string[] } = { _: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      if (arg === '--') {
        out._.push(...args.slice(i + 1));
        break;
      }
      out._.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag --${name}`);
    if (kind === 'boolean') {
      if (eq >= 0) {
        const v = arg.slice(eq + 1);
        if (v !== 'true' && v !== 'false') throw new UsageError(`--${name} takes true or false, not "${v}"`);
        out[name] = v === 'true';
      } else out[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = args[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (kind === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`--${name} takes a number, not "${value}"`);
      out[name] = n;
    } else out[name] = value;
  }
  return out as ParsedFlags<S>;
}
