/**
 * PostgreSQL COPY text format: one row a line, columns separated by a tab, NULL
 * as `\N`, and backslash, tab, newline and carriage return escaped. This is what
 * `COPY ... FROM STDIN` reads with no options, so a member streams straight in.
 */

export type Cell = string | number | boolean | null | undefined;

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

export function escapeCell(v: Cell): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RangeError(`cannot encode ${v} in a COPY row`);
    return String(v);
  }
  return v.replace(/[\\\t\n\r]/g, (ch) => ESCAPES[ch]!);
}

export function encodeRow(cells: readonly Cell[]): string {
  return cells.map(escapeCell).join('\t') + '\n';
}

const UNESCAPES: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', v: '\v' };

/** Decodes one line (without its newline) into cells; `\N` becomes null. */
export function decodeRow(line: string): (string | null)[] {
  return line.split('\t').map((cell) => {
    if (cell === '\\N') return null;
    return cell.replace(/\\(.)/g, (_m, ch: string) => UNESCAPES[ch] ?? ch);
  });
}
