// `apqn-operator sim`: a shell over one simulated node's AP bus. It boots the node's model
// from a topology file and runs sim-shell lines against its virtual sysfs — the same paths,
// contents and errnos the agent sees — from a script, a pipe or an interactive terminal.
// With --render DIR it writes the bus, as the script left it, to a real directory tree that
// the standard s390 tools read through SYSFS_ROOT (`SYSFS_ROOT=DIR lszcrypt -V`).
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { ApbusInputError } from '../apbus/ids.js';
import { ApBusModel } from '../apbus/model/ap-bus-model.js';
import { KERNEL_PROFILES, isKernelProfile, type KernelProfile } from '../apbus/model/profile.js';
import { RenderTargetError, checkRenderTarget, renderSysfs } from '../apbus/render.js';
import { executeSimLine } from '../apbus/sim-shell.js';
import { parseTopology, type NodeTopology } from '../apbus/topology.js';
import { VirtualSysfs } from '../apbus/virtual-sysfs.js';
import { UsageError, parseFlags } from '../util/args.js';

export const summary = "a shell over a simulated node's AP bus (virtual sysfs)";

const USAGE = `usage: apqn-operator sim --topology FILE [--node NAME] [--profile ${KERNEL_PROFILES.join('|')}] [--script FILE] [--render DIR]

Boots one node of the topology and reads commands from --script FILE, or else from stdin
(interactive when stdin is a terminal). Type 'help' for the commands. Exit status 1 when a
script line was not understood; refused operations (EBUSY …) are normal output.

--render DIR  after the script (or right after boot when there is none; stdin is then not
              read), write the node's sysfs as a directory tree into DIR (created; must be
              empty): attribute files with the kernel's contents, driver and device symlinks.
              s390-tools read it with SYSFS_ROOT=DIR, e.g. \`SYSFS_ROOT=DIR lszcrypt -V\`.
`;

export interface SimSessionOptions {
  topologyFile: string;
  /** Which node of the topology; the first when omitted. */
  node?: string;
  /** Overrides the node's `kernel`. */
  profile?: KernelProfile;
}

export interface SimSession {
  readonly node: NodeTopology;
  readonly model: ApBusModel;
  readonly io: VirtualSysfs;
}

/** Loads the topology and boots the chosen node. Throws ApbusInputError naming the problem. */
export function openSimSession(opts: SimSessionOptions): SimSession {
  let text: string;
  try {
    text = fs.readFileSync(opts.topologyFile, 'utf8');
  } catch (err) {
    throw new ApbusInputError(`${opts.topologyFile}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const topology = parseTopology(text, opts.topologyFile);
  const names = topology.nodes.map((n) => n.name);
  const chosen = opts.node === undefined ? topology.nodes[0] : topology.nodes.find((n) => n.name === opts.node);
  if (!chosen) {
    throw new ApbusInputError(
      opts.node === undefined
        ? `${opts.topologyFile}: has no nodes`
        : `${opts.topologyFile}: no node ${JSON.stringify(opts.node)} (nodes: ${names.join(', ')})`,
    );
  }
  const node: NodeTopology = opts.profile ? { ...chosen, kernel: opts.profile } : chosen;
  const model = ApBusModel.fromTopology(node);
  return { node, model, io: new VirtualSysfs(model) };
}

interface InputSummary {
  usageErrors: number;
}

/** Runs lines as they arrive, printing each result; stops at `exit`. */
async function runLines(
  lines: AsyncIterable<string>,
  session: SimSession,
  write: (text: string) => void,
  afterEach?: () => void,
): Promise<InputSummary> {
  let usageErrors = 0;
  for await (const line of lines) {
    const result = executeSimLine(line, { io: session.io, model: session.model });
    write(result.output);
    if (result.outcome === 'usage') usageErrors++;
    if (result.exit) break;
    afterEach?.();
  }
  return { usageErrors };
}

/** Writes the session's sysfs into `dir` and says so on stderr (stdout stays the script's). */
function renderTo(session: SimSession, dir: string): void {
  const stats = renderSysfs(session.io, dir);
  process.stderr.write(
    `rendered ${session.node.name} into ${dir}: ${stats.directories} directories, ${stats.files} files, ` +
      `${stats.symlinks} symlinks (read it with SYSFS_ROOT=${dir} lszcrypt -V)\n`,
  );
}

async function* scriptLines(file: string): AsyncIterable<string> {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  yield* lines;
}

export async function run(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseFlags(args, {
      topology: 'string',
      node: 'string',
      profile: 'string',
      script: 'string',
      render: 'string',
      help: 'boolean',
    });
    if (flags.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (flags._.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(flags._[0])}`);
    if (!flags.topology) throw new UsageError('--topology FILE is required');
    if (flags.profile !== undefined && !isKernelProfile(flags.profile)) {
      throw new UsageError(`--profile must be one of ${KERNEL_PROFILES.join(', ')}, not ${JSON.stringify(flags.profile)}`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`apqn-operator sim: ${err.message}\n\n${USAGE}`);
    return 2;
  }

  if (flags.render !== undefined) {
    try {
      checkRenderTarget(flags.render);
    } catch (err) {
      if (!(err instanceof RenderTargetError)) throw err;
      process.stderr.write(`apqn-operator sim: --render ${err.message}\n`);
      return 2;
    }
  }

  let session: SimSession;
  try {
    session = openSimSession({ topologyFile: flags.topology, node: flags.node, profile: flags.profile as KernelProfile | undefined });
  } catch (err) {
    if (!(err instanceof ApbusInputError)) throw err;
    process.stderr.write(`apqn-operator sim: ${err.message}\n`);
    return 2;
  }

  const write = (text: string) => {
    if (text) process.stdout.write(text);
  };

  if (flags.script !== undefined) {
    if (!fs.existsSync(flags.script)) {
      process.stderr.write(`apqn-operator sim: --script ${flags.script}: no such file\n`);
      return 2;
    }
    const { usageErrors } = await runLines(scriptLines(flags.script), session, write);
    if (usageErrors > 0) {
      if (flags.render !== undefined) {
        process.stderr.write(`apqn-operator sim: nothing rendered: ${usageErrors} script line(s) were not understood\n`);
      }
      return 1;
    }
    if (flags.render !== undefined) renderTo(session, flags.render);
    return 0;
  }
  if (flags.render !== undefined) {
    renderTo(session, flags.render);
    return 0;
  }

  const interactive = process.stdin.isTTY === true;
  const rl = readline.createInterface({
    input: process.stdin,
    output: interactive ? process.stdout : undefined,
    terminal: interactive,
    crlfDelay: Infinity,
  });
  try {
    if (interactive) {
      const { node } = session;
      process.stdout.write(`node ${node.name}, kernel ${node.kernel}, ${node.cards.length} cards. Type 'help' for commands.\n`);
      rl.setPrompt('sim> ');
      rl.prompt();
    }
    const { usageErrors } = await runLines(rl, session, write, interactive ? () => rl.prompt() : undefined);
    return usageErrors > 0 && !interactive ? 1 : 0;
  } finally {
    rl.close();
  }
}
