/**
 * Lines of a DB member (COPY text: one row a line, `\n`-terminated), read as a
 * stream: one line is held at a time, whatever the size of the member. Errors
 * of the input stream (e.g. a checksum mismatch from bundle/reader.ts) surface
 * in the loop that consumes the lines.
 */
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export async function* readLines(input: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending: string[] = [];
  for await (const chunk of input) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) !== -1) {
      pending.push(text.slice(start, nl));
      yield pending.length === 1 ? pending[0]! : pending.join('');
      pending = [];
      start = nl + 1;
    }
    if (start < text.length) pending.push(text.slice(start));
  }
  const tail = decoder.end();
  if (tail) pending.push(tail);
  if (pending.length > 0) yield pending.join('');
}

export function fileLines(file: string): AsyncGenerator<string> {
  return readLines(createReadStream(file, { highWaterMark: 1024 * 1024 }));
}

/** The first cell of a COPY row, as written (escaped): the advisory_id of every DB member. */
export function firstCell(line: string): string {
  const tab = line.indexOf('\t');
  return tab === -1 ? line : line.slice(0, tab);
}

/** The cell at `index` (0-based) of a COPY row, as written (escaped), or undefined. */
export function cellAt(line: string, index: number): string | undefined {
  let start = 0;
  for (let i = 0; i < index; i++) {
    const tab = line.indexOf('\t', start);
    if (tab === -1) return undefined;
    start = tab + 1;
  }
  const end = line.indexOf('\t', start);
  return end === -1 ? line.slice(start) : line.slice(start, end);
}

const OUTSIDE_BMP_ORDER = /[\uD800-\uFFFF]/;

/**
 * Bytewise (UTF-8, `LC_ALL=C`) order of two cells, the order of every DB member.
 * UTF-16 code-unit order is the same except around surrogates, so plain string
 * comparison is used unless a cell holds one of those code units.
 */
export function cellCompare(a: string, b: string): number {
  if (a === b) return 0;
  if (OUTSIDE_BMP_ORDER.test(a) || OUTSIDE_BMP_ORDER.test(b)) return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  return a < b ? -1 : 1;
}
