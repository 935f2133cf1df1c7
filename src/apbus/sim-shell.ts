// The engine of `apqn-operator sim`: one shell-like line at a time against a SysfsIO (the
// model's virtual sysfs) plus a few model-only actions userspace cannot perform on a real
// host (a guest opening an mdev, host load, card hot-plug, time passing).
//
//   cat PATH...                 print file contents exactly as held
//   ls [PATH]                   directory entries, one per line
//   readlink PATH               a symlink's stored target
//   echo [-n] VALUE... [> PATH] write VALUE (+ '\n' unless -n), one write() call
//   guest attach|detach UUID    a guest opens/closes the matrix mdev
//   host load APQN N [SECONDS]  N host requests in flight on APQN, draining after SECONDS
//   card remove|add ID          hot-unplug / replug an adapter
//   tick SECONDS                let time pass (host load drains)
//   help                        this list
// Paths are sysfs paths: '/sys/bus/ap/apmask' or 'bus/ap/apmask'. Blank lines and '#'
// comments print nothing. A failed read or write prints `error: <ERRNO> <explanation>`.
import { SysfsError } from './errno.js';
import { ApbusInputError, parseAdapterId, parseApqn, parseMdevUuid, type Apqn } from './ids.js';
import type { SysfsIO } from './sysfs-io.js';

/** What the shell needs from the model: the actions sysfs cannot express. */
export interface SimModel {
  attachGuest(uuid: string): void;
  detachGuest(uuid: string): void;
  addHostLoad(apqn: Apqn, requests: number, drainsAfterSeconds?: number): void;
  tick(seconds: number): void;
  removeCard(adapter: number): void;
  addCard(adapter: number): void;
}

export interface SimContext {
  io: SysfsIO;
  model: SimModel;
}

/** ok: did what was asked. failed: the bus or model refused (a normal outcome to observe).
 *  usage: the line itself was wrong (unknown command, bad syntax, bad argument). */
export type SimOutcome = 'ok' | 'failed' | 'usage';

export interface SimResult {
  /** Exactly what to print (empty, or ending in '\n' unless a file's contents do not). */
  output: string;
  outcome: SimOutcome;
}

export const SIM_HELP = [
  'cat PATH...                 print file contents',
  'ls [PATH]                   list a directory',
  'readlink PATH               print a symlink target',
  'echo [-n] VALUE... [> PATH] write VALUE and a newline (-n: no newline) to PATH',
  'guest attach|detach UUID    a guest opens/closes the mdev',
  'host load APQN N [SECONDS]  N host requests in flight on APQN, draining after SECONDS',
  'card remove|add ID          unplug / replug an adapter',
  'tick SECONDS                let time pass',
  '# ...                       comment',
].join('\n') + '\n';

/** Runs one line and returns what to print. */
export function runSimCommand(line: string, ctx: SimContext): string {
  return executeSimLine(line, ctx).output;
}

/** Runs one line and says how it went. Never throws for bad input or refused operations. */
export function executeSimLine(line: string, ctx: SimContext): SimResult {
  let tokens: Token[];
  try {
    tokens = tokenize(line);
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
  if (tokens.length === 0) return { output: '', outcome: 'ok' };
  const [first, ...rest] = tokens;
  if (first!.kind !== 'word') return usage("a line must start with a command, not '>'");
  try {
    switch (first!.text) {
      case 'cat':
        return cat(words(rest, 'cat PATH...'), ctx.io);
      case 'ls':
        return ls(words(rest, 'ls [PATH]'), ctx.io);
      case 'readlink':
        return readlink(words(rest, 'readlink PATH'), ctx.io);
      case 'echo':
        return echo(rest, ctx.io);
      case 'guest':
        return guest(words(rest, 'guest attach|detach UUID'), ctx.model);
      case 'host':
        return host(words(rest, 'host load APQN N [SECONDS]'), ctx.model);
      case 'card':
        return card(words(rest, 'card remove|add ID'), ctx.model);
      case 'tick':
        return tick(words(rest, 'tick SECONDS'), ctx.model);
      case 'help':
        return { output: SIM_HELP, outcome: 'ok' };
      default:
        return usage(`unknown command ${JSON.stringify(first!.text)} (try help)`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ApbusInputError) return usage(err.message);
    return failed(err);
  }
}

/** Runs every line of a script; usageErrors counts lines that were themselves wrong. */
export function runSimScript(text: string, ctx: SimContext): { output: string; usageErrors: number } {
  let output = '';
  let usageErrors = 0;
  for (const line of text.split('\n')) {
    const result = executeSimLine(line, ctx);
    output += result.output;
    if (result.outcome === 'usage') usageErrors++;
  }
  return { output, usageErrors };
}

// ------------------------------------------------------------------------- commands

function cat(args: string[], io: SysfsIO): SimResult {
  if (args.length === 0) throw new UsageError('usage: cat PATH...');
  let output = '';
  let outcome: SimOutcome = 'ok';
  for (const path of args) {
    try {
      output += io.read(path);
    } catch (err) {
      output += errorLine(err);
      outcome = 'failed';
    }
  }
  return { output, outcome };
}

function ls(args: string[], io: SysfsIO): SimResult {
  if (args.length > 1) throw new UsageError('usage: ls [PATH]');
  const path = args[0] ?? '';
  try {
    const entries = io.list(path);
    return { output: entries.map((e) => e + '\n').join(''), outcome: 'ok' };
  } catch (err) {
    // Like ls(1): naming an existing file prints the name back.
    if (err instanceof SysfsError && err.errno === 'ENOTDIR') return { output: path + '\n', outcome: 'ok' };
    return failed(err);
  }
}

function readlink(args: string[], io: SysfsIO): SimResult {
  if (args.length !== 1) throw new UsageError('usage: readlink PATH');
  return { output: io.readlink(args[0]!) + '\n', outcome: 'ok' };
}

/** echo [-n] VALUE... [> PATH]: joins the words with spaces like a shell's echo. */
function echo(tokens: Token[], io: SysfsIO): SimResult {
  const redirect = tokens.findIndex((t) => t.kind === 'redirect');
  const valueTokens = redirect === -1 ? tokens : tokens.slice(0, redirect);
  const target = redirect === -1 ? [] : tokens.slice(redirect + 1);
  const values = valueTokens.map((t) => (t as WordToken).text);
  let newline = true;
  // As in bash, echo sees arguments after quote removal, so "-n" is the option too.
  while (values[0] !== undefined && /^-n+$/.test(values[0])) {
    values.shift();
    newline = false;
  }
  const value = values.join(' ') + (newline ? '\n' : '');
  if (redirect === -1) return { output: value, outcome: 'ok' };
  if (target.length !== 1 || target[0]!.kind !== 'word') {
    throw new UsageError('usage: echo [-n] VALUE... > PATH (exactly one path after >)');
  }
  io.write(target[0]!.text, value);
  return { output: '', outcome: 'ok' };
}

function guest(args: string[], model: SimModel): SimResult {
  const [action, uuidText, ...extra] = args;
  if ((action !== 'attach' && action !== 'detach') || uuidText === undefined || extra.length > 0) {
    throw new UsageError('usage: guest attach|detach UUID');
  }
  const uuid = parseMdevUuid(uuidText);
  if (action === 'attach') model.attachGuest(uuid);
  else model.detachGuest(uuid);
  return { output: '', outcome: 'ok' };
}

function host(args: string[], model: SimModel): SimResult {
  const [action, apqnText, countText, secondsText, ...extra] = args;
  if (action !== 'load' || apqnText === undefined || countText === undefined || extra.length > 0) {
    throw new UsageError('usage: host load APQN N [SECONDS]');
  }
  const apqn = parseApqn(apqnText);
  const requests = parseCount(countText, 'N (requests in flight)');
  if (secondsText === undefined) model.addHostLoad(apqn, requests);
  else model.addHostLoad(apqn, requests, parseSeconds(secondsText));
  return { output: '', outcome: 'ok' };
}

function card(args: string[], model: SimModel): SimResult {
  const [action, idText, ...extra] = args;
  if ((action !== 'remove' && action !== 'add') || idText === undefined || extra.length > 0) {
    throw new UsageError('usage: card remove|add ID');
  }
  const adapter = parseAdapterId(idText);
  if (action === 'remove') model.removeCard(adapter);
  else model.addCard(adapter);
  return { output: '', outcome: 'ok' };
}

function tick(args: string[], model: SimModel): SimResult {
  if (args.length !== 1) throw new UsageError('usage: tick SECONDS');
  model.tick(parseSeconds(args[0]!));
  return { output: '', outcome: 'ok' };
}

// ------------------------------------------------------------------------- helpers

class UsageError extends Error {}

function usage(message: string): SimResult {
  return { output: `error: ${message}\n`, outcome: 'usage' };
}

function failed(err: unknown): SimResult {
  return { output: errorLine(err), outcome: 'failed' };
}

function errorLine(err: unknown): string {
  if (err instanceof SysfsError) return `error: ${err.errno} ${err.explanation}\n`;
  const message = err instanceof Error ? err.message : String(err);
  return `error: ${message.split('\n')[0]}\n`;
}

/** The command's arguments, which must all be plain words (no '>'). */
function words(tokens: Token[], synopsis: string): string[] {
  if (tokens.some((t) => t.kind !== 'word')) throw new UsageError(`usage: ${synopsis} ('>' only works with echo)`);
  return tokens.map((t) => (t as WordToken).text);
}

function parseCount(text: string, what: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new UsageError(`${what} must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseSeconds(text: string): number {
  if (!/^\d{1,9}(\.\d+)?$/.test(text)) throw new UsageError(`SECONDS must be a non-negative number, got ${JSON.stringify(text)}`);
  return Number(text);
}

// ------------------------------------------------------------------------- tokenizer
// A small subset of POSIX shell word splitting: whitespace separates words; '...' is
// literal; "..." allows \" \\ \$ \` escapes; an unquoted backslash escapes the next char;
// an unquoted '>' is a redirection; an unquoted '#' at the start of a word begins a comment.
// Everything else a shell would give meaning to (| ; & < ( ) $ `) is refused rather than
// silently taken literally.

export interface WordToken {
  kind: 'word';
  text: string;
  quoted: boolean;
}
export interface RedirectToken {
  kind: 'redirect';
}
export type Token = WordToken | RedirectToken;

const UNSUPPORTED = new Set(['|', ';', '&', '<', '(', ')', '$', '`']);

export function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let word: string | null = null; // null: not inside a word
  let quoted = false;
  const finish = () => {
    if (word !== null) tokens.push({ kind: 'word', text: word, quoted });
    word = null;
    quoted = false;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      finish();
    } else if (c === '#' && word === null) {
      break;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new UsageError('unterminated single quote');
      word = (word ?? '') + line.slice(i + 1, end);
      quoted = true;
      i = end;
    } else if (c === '"') {
      let text = '';
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) j++;
        else if (line[j] === '$' || line[j] === '`') throw new UsageError('variables and command substitution are not supported');
        text += line[j];
      }
      if (j >= line.length) throw new UsageError('unterminated double quote');
      word = (word ?? '') + text;
      quoted = true;
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new UsageError('a line cannot end with a backslash');
      word = (word ?? '') + line[++i];
      quoted = true;
    } else if (c === '>') {
      if (word !== null && !quoted && /^\d+$/.test(word)) {
        throw new UsageError(`'${word}>' would redirect file descriptor ${word} in a shell; write 'echo ${word} > PATH'`);
      }
      finish();
      if (line[i + 1] === '>') throw new UsageError("'>>' is not supported (sysfs attributes are written, not appended)");
      tokens.push({ kind: 'redirect' });
    } else if (UNSUPPORTED.has(c)) {
      throw new UsageError(`shell syntax ${JSON.stringify(c)} is not supported (quote it to use it literally)`);
    } else {
      word = (word ?? '') + c;
    }
  }
  finish();
  return tokens;
}
