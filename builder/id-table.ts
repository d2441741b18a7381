/**
 * Distinct strings (advisory ids) numbered 0, 1, 2, … in the order first seen,
 * held as UTF-8 bytes in one growing arena with an open-addressing hash index:
 * about 40 bytes an id (its bytes, an offset, two hash slots), against 150 or
 * more for a Map of strings.
 *
 * It never keeps the strings it is given, only copies of their bytes. That
 * matters: a string the NVD reader produced is a slice of the 1 MiB chunk it
 * was parsed from, and V8 keeps the whole chunk alive for as long as any slice
 * of it lives, so a table of such ids held every NVD page in memory (3.6 GB at
 * full size).
 */

const INITIAL_IDS = 1024;
const INITIAL_BYTES = 64 * 1024;
const MAX_ID_BYTES = 64 * 1024;

export class IdTable {
  private bytes = Buffer.allocUnsafe(INITIAL_BYTES);
  private used = 0;
  /** Id n's bytes are bytes[starts[n], starts[n + 1]). */
  private starts = new Uint32Array(INITIAL_IDS + 1);
  private count = 0;
  /** Open addressing, linear probing: id + 1, or 0 for an empty slot. Never more than half full. */
  private slots = new Int32Array(INITIAL_IDS * 2);
  private readonly scratch = Buffer.allocUnsafe(MAX_ID_BYTES * 3);

  /** Number of distinct ids. */
  get size(): number {
    return this.count;
  }

  /** The number of `id`, or -1 when it was never added. */
  find(id: string): number {
    const len = this.encode(id);
    return this.lookup(len, hash(this.scratch, len));
  }

  /** The number of `id`, adding it when new. */
  intern(id: string): number {
    const len = this.encode(id);
    const h = hash(this.scratch, len);
    const found = this.lookup(len, h);
    if (found !== -1) return found;
    if ((this.count + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const n = this.count++;
    if (this.count + 1 > this.starts.length) this.starts = grow(this.starts, this.starts.length * 2);
    if (this.used + len > this.bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + len));
      this.bytes.copy(bigger, 0, 0, this.used);
      this.bytes = bigger;
    }
    this.scratch.copy(this.bytes, this.used, 0, len);
    this.starts[n] = this.used;
    this.used += len;
    this.starts[n + 1] = this.used;
    this.place(n, h);
    return n;
  }

  /** Id number `n` as a string (a new string each call). */
  get(n: number): string {
    if (n < 0 || n >= this.count) throw new RangeError(`IdTable: no id ${n}`);
    return this.bytes.toString('utf8', this.starts[n]!, this.starts[n + 1]!);
  }

  private encode(id: string): number {
    if (id.length > MAX_ID_BYTES) throw new RangeError(`IdTable: an id of ${id.length} characters (at most ${MAX_ID_BYTES})`);
    return this.scratch.write(id, 0, 'utf8');
  }

  private lookup(len: number, h: number): number {
    const mask = this.slots.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const s = this.slots[i]!;
      if (s === 0) return -1;
      const n = s - 1;
      const start = this.starts[n]!;
      if (this.starts[n + 1]! - start === len && this.bytes.compare(this.scratch, 0, len, start, start + len) === 0) return n;
    }
  }

  private place(n: number, h: number): void {
    const mask = this.slots.length - 1;
    let i = h & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = n + 1;
  }

  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    for (let n = 0; n < this.count; n++) {
      const start = this.starts[n]!;
      this.place(n, hash(this.bytes, this.starts[n + 1]!, start));
    }
  }
}

/** FNV-1a over buf[start, end). */
function hash(buf: Buffer, end: number, start = 0): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

/** A copy of `a`, `size` elements long. */
export function grow<T extends Uint32Array | Int32Array>(a: T, size: number): T {
  const b = new (a.constructor as new (length: number) => T)(size);
  b.set(a);
  return b;
}
