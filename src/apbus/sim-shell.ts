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
//   card remove ID              hot-unplug an adapter
//   card add ID [TYPE DOMAINS]  replug it, or plug a new one ('card add 09 CEX8P 0000-000f')
//   card config|chkstop ID on|off  SCLP (de)configure / checkstop an adapter
//   tick SECONDS                let time pass (host load drains)
//   reboot                      masks back to all ones, mdevs gone
//   help, exit                  this list; stop reading
// Paths are sysfs paths: '/sys/bus/ap/apmask' or 'bus/ap/apmask'. Blank lines and '#'
// comments print nothing. A failed read or write prints `error: <ERRNO> <explanation>`.
import { SysfsError, errnoExplanation } from './errno.js';
import { ApbusInputError, parseAdapterId, parseApqn, parseDomainId, parseMdevUuid, type Apqn } from './ids.js';
import { ApBusError } from './model/errors.js';
import { parseCardType, type CardModeLetter } from './model/hardware.js';
import type { SysfsIO } from './sysfs-io.js';

/** A card to hot-plug (the shape of the model's CardSpec). */
export interface SimCardSpec {
  readonly id: number;
  readonly hwtype: number;
  readonly mode: CardModeLetter;
  readonly domains: readonly number[];
}

/** What the shell needs from the model (ApBusModel): the actions sysfs cannot express. */
export interface SimModel {
  attachGuest(uuid: string): void;
  detachGuest(uuid: string): void;
  addHostLoad(apqn: Apqn, requests: number, drainsAfterSeconds?: number): void;
  tick(seconds: number): void;
  removeCard(adapter: number): void;
  replugCard(adapter: number): void;
  addCard(spec: SimCardSpec): void;
  setCardConfig(adapter: number, config: boolean): void;
  setCheckstop(adapter: number, chkstop: boolean): void;
  reboot(): void;
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
  /** The line was `exit` (or `quit`): the caller stops reading. */
  exit?: boolean;
}

export const SIM_HELP = [
  'cat PATH...                 print file contents',
  'ls [PATH]                   list a directory',
  'readlink PATH               print a symlink target',
  'echo [-n] VALUE... [> PATH] write VALUE and a newline (-n: no newline) to PATH',
  'guest attach|detach UUID    a guest opens/closes the mdev',
  'host load APQN N [SECONDS]  N host requests in flight on APQN, draining after SECONDS',
  'card remove ID              unplug an adapter',
  'card add ID [TYPE DOMAINS]  replug it, or plug a new one (card add 09 CEX8P 0000-000f)',
  'card config|chkstop ID on|off  deconfigure / checkstop an adapter',
  'tick SECONDS                let time pass',
  'reboot                      masks back to all ones, mdevs gone',
  '# ...                       comment',
  'exit                        stop',
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
        return card(words(rest, 'card remove|add|config|chkstop ID ...'), ctx.model);
      case 'tick':
        return tick(words(rest, 'tick SECONDS'), ctx.model);
      case 'reboot':
        if (rest.length > 0) throw new UsageError('usage: reboot');
        ctx.model.reboot();
        return { output: '', outcome: 'ok' };
      case 'help':
        return { output: SIM_HELP, outcome: 'ok' };
      case 'exit':
      case 'quit':
        return { output: '', outcome: 'ok', exit: true };
      default:
        return usage(`unknown command ${JSON.stringify(first!.text)} (try help)`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ApbusInputError) return usage(err.message);
    return failed(err);
  }
}

/** Runs every line of a script up to `exit`; usageErrors counts lines that were themselves wrong. */
export function runSimScript(text: string, ctx: SimContext): { output: string; usageErrors: number } {
  let output = '';
  let usageErrors = 0;
  for (const line of text.split('\n')) {
    const result = executeSimLine(line, ctx);
    output += result.output;
    if (result.outcome === 'usage') usageErrors++;
    if (result.exit) break;
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
  if (requests < 1) throw new UsageError('N (requests in flight) must be at least 1');
  if (secondsText === undefined) model.addHostLoad(apqn, requests);
  else model.addHostLoad(apqn, requests, parseSeconds(secondsText));
  return { output: '', outcome: 'ok' };
}

function card(args: string[], model: SimModel): SimResult {
  const [action, idText, ...more] = args;
  if (idText === undefined) throw new UsageError('usage: card remove|add|config|chkstop ID ...');
  const adapter = parseAdapterId(idText);
  if (action === 'remove' && more.length === 0) {
    model.removeCard(adapter);
  } else if (action === 'add' && more.length === 0) {
    model.replugCard(adapter);
  } else if (action === 'add' && more.length === 2) {
    const kind = parseCardType(more[0]!);
    if (!kind) throw new UsageError(`card type ${JSON.stringify(more[0])} is not like CEX8P (CEX4..CEX8, mode C, P or A)`);
    model.addCard({ id: adapter, hwtype: kind.hwtype, mode: kind.mode, domains: parseDomains(more[1]!) });
  } else if ((action === 'config' || action === 'chkstop') && more.length === 1) {
    const on = parseSwitch(more[0]!);
    if (action === 'config') model.setCardConfig(adapter, on);
    else model.setCheckstop(adapter, on);
  } else {
    throw new UsageError('usage: card remove ID | card add ID [TYPE DOMAINS] | card config|chkstop ID on|off');
  }
  return { output: '', outcome: 'ok' };
}

/** 'aaaa-zzzz' or a comma-separated list of domains, hex as everywhere in the API. */
function parseDomains(text: string): number[] {
  const range = /^([^,-]+)-([^,-]+)$/.exec(text);
  if (range) {
    const first = parseDomainId(range[1]!);
    const last = parseDomainId(range[2]!);
    if (first > last) throw new UsageError(`domain range ${text} is reversed`);
    return Array.from({ length: last - first + 1 }, (_, i) => first + i);
  }
  return [...new Set(text.split(',').map(parseDomainId))].sort((a, b) => a - b);
}

function parseSwitch(text: string): boolean {
  if (text === 'on' || text === '1') return true;
  if (text === 'off' || text === '0') return false;
  throw new UsageError(`expected on or off, got ${JSON.stringify(text)}`);
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
  if (err instanceof ApBusError) {
    // Same shape as the virtual sysfs reports it: strerror, then the model's reason.
    const strerror = errnoExplanation(err.errno);
    return `error: ${err.errno} ${strerror}${err.detail === strerror ? '' : ` (${err.detail})`}\n`;
  }
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
