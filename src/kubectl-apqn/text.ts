// Text helpers for the plugin's output: kubectl-style aligned tables and ANSI colour that is
// applied only when the output is a terminal (a `Paint` that does nothing otherwise).

export type Colour = 'red' | 'green' | 'yellow' | 'blue' | 'magenta' | 'cyan' | 'gray' | 'bold' | 'inverse';

const CODES: Record<Colour, [number, number]> = {
  bold: [1, 22],
  inverse: [7, 27],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
  gray: [90, 39],
};

/** Wraps text in ANSI codes (or returns it unchanged). */
export type Paint = (text: string, ...colours: Colour[]) => string;

export const plain: Paint = (text) => text;

export const ansi: Paint = (text, ...colours) =>
  colours.reduce((t, c) => `\x1b[${CODES[c][0]}m${t}\x1b[${CODES[c][1]}m`, text);

/** Colour on a terminal unless NO_COLOR is set; `--color=always|never` overrides. */
export function choosePaint(isTTY: boolean, env: NodeJS.ProcessEnv, flag?: string): Paint {
  if (flag === 'always') return ansi;
  if (flag === 'never') return plain;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return plain;
  return isTTY ? ansi : plain;
}

/** Visible width of a string that may hold ANSI codes. */
export function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** Columns separated by three spaces, left-aligned, the last one unpadded (kubectl's look). */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => visibleLength(r[c] ?? ''))));
  return (
    all
      .map((r) =>
        r
          .map((cell, c) => (c === r.length - 1 ? cell : cell + ' '.repeat(widths[c]! - visibleLength(cell))))
          .join('   ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
