// Shell completion for `kubectl apqn …`. kubectl (1.26 and later) completes a plugin's
// arguments by running the executable `kubectl_complete-apqn` from PATH with the words typed
// after `kubectl apqn`, the last being the one under the cursor (empty at a fresh word); it
// expects cobra's `__complete` answer: one candidate per line (a tab, then a description, is
// allowed), then `:` and a directive number. bin/kubectl_complete-apqn.js runs this.
import type { ApiConfig } from '../k8s/client.js';
import { loadKubeConfig } from '../k8s/client.js';
import { listNodeStateNames, readReservationsAndClaims } from './cluster.js';
import { COMMANDS, COMMON_FLAGS, isCommand } from './commands.js';

/** cobra's ShellCompDirective values this plugin uses. */
export const Directive = {
  /** Let the shell complete file names (for -f and --kubeconfig). */
  Default: 0,
  NoFileComp: 4,
} as const;

// Short aliases and which flags take a value, from the flag table main.ts parses with.
const ALL_FLAGS = [...COMMON_FLAGS, ...Object.values(COMMANDS).flatMap((c) => c.flags)];
const SHORT = new Map(ALL_FLAGS.filter((f) => f.short).map((f) => [f.short!, f.name]));
const TAKES_VALUE = new Set(ALL_FLAGS.filter((f) => f.value).map((f) => f.name));
const VALUES: Record<string, string[]> = { output: ['json', 'yaml'], color: ['auto', 'always', 'never'] };

export interface Completion {
  candidates: string[];
  directive: number;
}

/** What the cluster can tell a completion (node and namespace names); failures give nothing. */
export interface CompletionSource {
  nodes(): Promise<string[]>;
  namespaces(): Promise<string[]>;
}

export function clusterSource(kubeconfig: string | undefined): CompletionSource {
  let kc: ApiConfig | undefined;
  const config = () => (kc ??= loadKubeConfig(kubeconfig));
  return {
    nodes: () => listNodeStateNames(config()),
    async namespaces() {
      const { reservations, claims } = await readReservationsAndClaims(config(), undefined);
      return [...new Set([...reservations, ...claims].map((o) => o.metadata.namespace ?? ''))].filter(Boolean).sort();
    },
  };
}

/** The flag a word names (`--output`, `-o`, `--output=json` → output), if any. */
function flagName(word: string): string | undefined {
  if (word.startsWith('--')) return word.slice(2).split('=')[0];
  if (word.startsWith('-') && word.length === 2) return SHORT.get(word[1]!);
  return undefined;
}

export async function complete(words: readonly string[], source: CompletionSource): Promise<Completion> {
  const current = words.length > 0 ? words[words.length - 1]! : '';
  const before = words.slice(0, -1);
  const matching = (list: readonly string[]) => list.filter((c) => c.startsWith(current));
  const none = { candidates: [], directive: Directive.NoFileComp };
  const command = before[0];

  if (command === undefined) {
    return { candidates: Object.entries(COMMANDS).filter(([c]) => c.startsWith(current)).map(([c, spec]) => `${c}\t${spec.summary}`), directive: Directive.NoFileComp };
  }
  if (!isCommand(command)) return none;
  const spec = COMMANDS[command];

  // The value of the flag just before the cursor.
  const previous = before.length > 1 ? flagName(before[before.length - 1]!) : undefined;
  if (previous && TAKES_VALUE.has(previous) && !before[before.length - 1]!.includes('=')) return valueOf(previous);
  if (current.startsWith('--') && current.includes('=')) {
    const flag = flagName(current)!;
    const prefix = current.slice(0, current.indexOf('=') + 1);
    const values = await valueOf(flag, current.slice(prefix.length));
    return { candidates: values.candidates.map((v) => prefix + v), directive: values.directive };
  }
  if (current.startsWith('-')) {
    return { candidates: matching([...spec.flags, ...COMMON_FLAGS].map((f) => `--${f.name}`)), directive: Directive.NoFileComp };
  }
  // Positional: matrix and capacity take one node.
  if ((command === 'matrix' || command === 'capacity') && positionals(before.slice(1)).length === 0) {
    return { candidates: matching(await quietly(source.nodes())), directive: Directive.NoFileComp };
  }
  return none;

  async function valueOf(flag: string, typed = current): Promise<Completion> {
    const from = (list: string[]) => ({ candidates: list.filter((v) => v.startsWith(typed)), directive: Directive.NoFileComp });
    if (VALUES[flag]) return from(VALUES[flag]!);
    if (flag === 'namespace') return from(await quietly(source.namespaces()));
    if (flag === 'filename' || flag === 'kubeconfig') return { candidates: [], directive: Directive.Default };
    return none;
  }
}

/** The positional words among `words` (flags and their values left out). */
function positionals(words: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const flag = flagName(words[i]!);
    if (flag !== undefined) {
      if (TAKES_VALUE.has(flag) && !words[i]!.includes('=')) i++;
      continue;
    }
    out.push(words[i]!);
  }
  return out;
}

async function quietly(list: Promise<string[]>): Promise<string[]> {
  try {
    return await list;
  } catch {
    return []; // no cluster, no rights: nothing to offer, never an error on the prompt
  }
}

/** cobra's answer format. */
export function renderCompletion(c: Completion): string {
  return [...c.candidates, `:${c.directive}`].join('\n') + '\n';
}

/** The --kubeconfig among the typed words, so completion asks the cluster the command would. */
export function kubeconfigIn(words: readonly string[]): string | undefined {
  for (let i = 0; i < words.length - 1; i++) {
    const w = words[i]!;
    if (w === '--kubeconfig') return words[i + 1];
    if (w.startsWith('--kubeconfig=')) return w.slice('--kubeconfig='.length);
  }
  return undefined;
}
