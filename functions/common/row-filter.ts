/**
 * Line filters over a DB member's COPY text (bundle/tsv.ts: one row a line,
 * columns tab-separated, the advisory_id first), for a full kit loaded onto
 * the active DB of its lineage (functions/common/onto-load.ts): only the rows
 * of the advisories that differ go on to COPY.
 *
 * Pure stream logic: no I/O. Every line is counted (the load checks the count
 * against the manifest's `rows`), whether it is kept or not. Ids and hashes
 * are compared as the raw COPY text both sides give (the active DB's are read
 * with COPY … TO STDOUT), so no unescaping is needed.
 */
import { Transform } from 'node:stream';
import { OukError } from '../../lib/errors.ts';

const NL = 0x0a;
const TAB = 0x09;

/** A Transform passing the lines `keep` accepts, counting every line in `lines`. */
export interface RowFilter extends Transform {
  readonly lines: number;
}

/**
 * How far the advisories' pass has decided (their ids come sorted): a
 * filter of another table, whose rows come in the same order, waits at a row
 * until its advisory is decided, so both members stream at once.
 */
export class IdGate {
  private upTo: Buffer | null = null;
  private closed = false;
  private error: Error | null = null;
  private waiters: Array<() => void> = [];

  /** Every advisory up to `id` (bytewise) is decided. */
  advance(id: Buffer): void {
    this.upTo = id;
    if (this.waiters.length) this.wake();
  }

  /** The pass is over (every advisory decided), or failed with `error`. */
  close(error?: Error): void {
    this.closed = true;
    if (error) this.error = error;
    this.wake();
  }

  /** Whether the advisory `id` is decided; throws when the pass failed. */
  decided(id: Buffer): boolean {
    if (this.error) throw this.error;
    return this.closed || (this.upTo !== null && Buffer.compare(id, this.upTo) <= 0);
  }

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Waits at `line` until `gate` has decided its advisory (its first column). */
async function decidedAt(gate: IdGate, line: Buffer): Promise<void> {
  const tab = line.indexOf(TAB);
  const id = line.subarray(0, tab < 0 ? line.length : tab);
  while (!gate.decided(id)) await gate.wait();
}

/**
 * Splits chunks into whole lines (a line may span chunks) and passes those
 * `keep(line)` accepts, newline included; with a `gate`, each line waits until
 * its advisory is decided.
 */
export function rowFilter(keep: (line: Buffer) => boolean, gate?: IdGate): RowFilter {
  let rest: Buffer | null = null;
  let lines = 0;
  const t = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      if (gate) {
        gated(chunk).then((out) => cb(null, out), (e: unknown) => cb(e as Error));
        return;
      }
      try {
        const kept: Buffer[] = [];
        const buf = chunk;
        let start = 0;
        if (rest) {
          // Only the line that spans the chunks is copied, not the whole chunk.
          const nl = chunk.indexOf(NL);
          if (nl < 0) {
            rest = Buffer.concat([rest, chunk]);
            cb();
            return;
          }
          const line = Buffer.concat([rest, chunk.subarray(0, nl + 1)]);
          rest = null;
          lines++;
          if (keep(line.subarray(0, line.length - 1))) kept.push(line);
          start = nl + 1;
        }
        for (let nl = buf.indexOf(NL, start); nl >= 0; nl = buf.indexOf(NL, start)) {
          const line = buf.subarray(start, nl);
          lines++;
          if (keep(line)) kept.push(buf.subarray(start, nl + 1));
          start = nl + 1;
        }
        rest = start < buf.length ? Buffer.from(buf.subarray(start)) : null;
        cb(null, kept.length ? Buffer.concat(kept) : undefined);
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb) {
      // A member's last line ends with a newline; a last line without one is still a row.
      const last = async (): Promise<Buffer | undefined> => {
        if (!rest || !rest.length) return undefined;
        lines++;
        const line = rest;
        rest = null;
        if (gate) await decidedAt(gate, line);
        return keep(line) ? Buffer.concat([line, Buffer.from('\n')]) : undefined;
      };
      last().then((out) => cb(null, out), (e: unknown) => cb(e as Error));
    },
  }) as RowFilter;
  /** The gated path: the same as the plain one, each line waiting for its advisory's decision. */
  const gated = async (chunk: Buffer): Promise<Buffer | undefined> => {
    const kept: Buffer[] = [];
    let start = 0;
    if (rest) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        rest = Buffer.concat([rest, chunk]);
        return undefined;
      }
      const line = Buffer.concat([rest, chunk.subarray(0, nl + 1)]);
      rest = null;
      lines++;
      await decidedAt(gate!, line);
      if (keep(line.subarray(0, line.length - 1))) kept.push(line);
      start = nl + 1;
    }
    for (let nl = chunk.indexOf(NL, start); nl >= 0; nl = chunk.indexOf(NL, start)) {
      const line = chunk.subarray(start, nl);
      lines++;
      await decidedAt(gate!, line);
      if (keep(line)) kept.push(chunk.subarray(start, nl + 1));
      start = nl + 1;
    }
    rest = start < chunk.length ? Buffer.from(chunk.subarray(start)) : null;
    return kept.length ? Buffer.concat(kept) : undefined;
  };
  Object.defineProperty(t, 'lines', { get: () => lines });
  return t;
}

/** The first column of a COPY text line (the whole line when it has no tab). */
export function firstField(line: Buffer): string {
  const tab = line.indexOf(TAB);
  return line.toString('utf8', 0, tab < 0 ? line.length : tab);
}

/** Column `n` (0-based) of a COPY text line, or null when the line has fewer columns. */
export function field(line: Buffer, n: number): string | null {
  let start = 0;
  for (let i = 0; i < n; i++) {
    const tab = line.indexOf(TAB, start);
    if (tab < 0) return null;
    start = tab + 1;
  }
  const end = line.indexOf(TAB, start);
  return line.toString('utf8', start, end < 0 ? line.length : end);
}

/**
 * The keep function for a table whose rows are sorted by their first column:
 * a line is kept when its advisory_id is in `ids`. Consecutive lines of one
 * advisory reuse the decision (one Set lookup per advisory, not per row).
 */
export function idIn(ids: ReadonlySet<string>): (line: Buffer) => boolean {
  let prev: Buffer | null = null;
  let prevKept = false;
  return (line) => {
    const tab = line.indexOf(TAB);
    const end = tab < 0 ? line.length : tab;
    if (prev && prev.length === end && prev.compare(line, 0, end) === 0) return prevKept;
    prev = Buffer.from(line.subarray(0, end));
    prevKept = ids.has(prev.toString('utf8'));
    return prevKept;
  };
}

/** What comparing a kit's advisories with the active DB's found. */
export interface AdvisoryDiff {
  /** Ids in the kit whose content_hash is new or differs (their rows go to COPY). */
  changed: Set<string>;
  /** Rows of the kit's advisories member. */
  total: number;
  /** Of the changed, those the active DB does not have. */
  added: number;
}

/**
 * The keep function for a kit's advisories member against the active DB's
 * content hashes (`active`: id → content_hash): a row is kept when its
 * advisory is new or its hash differs. Every id met is deleted from `active`,
 * so what is left there at the end is what the kit removes.
 */
export function advisoryChanged(active: Map<string, string>, hashColumn: number, diff: AdvisoryDiff, gate?: IdGate): (line: Buffer) => boolean {
  let prev: Buffer | null = null;
  return (line) => {
    const tab = line.indexOf(TAB);
    const idBytes = line.subarray(0, tab < 0 ? line.length : tab);
    // One row per advisory, sorted bytewise (docs/bundle-format.md): a duplicate, which the whole
    // load's primary key would refuse, must not slip through here as an "unchanged" row.
    if (prev && Buffer.compare(idBytes, prev) <= 0) {
      throw new OukError('MANIFEST_INVALID', `db/advisories.tsv is not sorted by advisory_id or lists ${idBytes.toString('utf8')} twice: the bundle is inconsistent — rebuild it`);
    }
    prev = Buffer.from(idBytes);
    const id = prev.toString('utf8');
    const hash = field(line, hashColumn);
    diff.total++;
    const had = active.get(id);
    active.delete(id);
    const changed = had === undefined || hash === null || had !== hash;
    if (changed) {
      diff.changed.add(id);
      if (had === undefined) diff.added++;
    }
    // Every advisory up to this one is decided: the other tables' filters may pass their rows.
    gate?.advance(prev);
    return changed;
  };
}
