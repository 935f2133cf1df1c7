// Structured logging for every component: JSON lines when stdout is not a terminal (in a
// cluster, for log collectors), a readable one-line format on a terminal. Every line carries
// the component and, through child loggers, the object and node it is about.
import winston from 'winston';

export type Logger = winston.Logger;

const level = process.env.APQN_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info';

function readableFormat(): winston.Logform.Format {
  return winston.format.combine(
    winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
    winston.format.colorize(),
    winston.format.printf(({ timestamp, level, message, component, ...rest }) => {
      const fields = Object.entries(rest)
        .filter(([k]) => typeof k === 'string')
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      return `${timestamp} ${level} [${component ?? 'apqn'}] ${message}${fields ? ' ' + fields : ''}`;
    }),
  );
}

function jsonFormat(): winston.Logform.Format {
  return winston.format.combine(winston.format.timestamp(), winston.format.json());
}

/** Chooses the format: APQN_LOG_FORMAT=json|text overrides the terminal check. */
function useJson(): boolean {
  const forced = process.env.APQN_LOG_FORMAT;
  if (forced === 'json') return true;
  if (forced === 'text') return false;
  return !process.stdout.isTTY;
}

let consoleTransport = new winston.transports.Console({ stderrLevels: ['error', 'warn'] });
const root = winston.createLogger({
  level,
  format: useJson() ? jsonFormat() : readableFormat(),
  transports: [consoleTransport],
});

/** Sends every level to stderr: for commands whose stdout is a protocol (`dev` prints one `ready:` line). */
export function logToStderr(): void {
  root.remove(consoleTransport);
  consoleTransport = new winston.transports.Console({ stderrLevels: Object.keys(root.levels) });
  root.add(consoleTransport);
}

/**
 * Sends every line to `file` (JSON lines) instead of the console: a test run keeps the logs of
 * the components under test out of its results, and shows them when a test fails.
 */
export function logToFile(file: string): void {
  root.remove(consoleTransport);
  root.add(new winston.transports.File({ filename: file, format: jsonFormat() }));
}

/** A logger for one component (`controller`, `agent`, `controlplane`, …) with fixed fields. */
export function logger(component: string, fields: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...fields });
}

/** Silences all output (tests that do not want log noise set APQN_LOG_LEVEL=silent). */
export function setLogLevel(newLevel: string): void {
  root.level = newLevel;
  if (newLevel === 'silent') root.silent = true;
}
