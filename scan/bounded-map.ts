/**
 * A map bounded by weight rather than by entries, in two generations: when
 * the current one would pass `maxWeight`, it becomes the old one (its entries
 * still answer, and move back to the current one on use) and the one before
 * is dropped. What an entry weighs is the caller's measure (`weigh`:
 * characters of a key, or of the text a value was made from): the scan's
 * caches hold entries from a few bytes to hundreds of kilobytes, so a count
 * of entries bounds nothing. At most about twice `maxWeight` is held.
 */
export class BoundedMap<T> {
  private current = new Map<string, T>();
  private old = new Map<string, T>();
  private weight = 0;

  constructor(
    private readonly maxWeight: number,
    private readonly weigh: (key: string, value: T) => number,
  ) {}

  get(key: string): T | undefined {
    const hit = this.current.get(key);
    if (hit !== undefined) return hit;
    const aged = this.old.get(key);
    if (aged === undefined) return undefined;
    this.old.delete(key);
    this.set(key, aged);
    return aged;
  }

  /** Keeps `value` for `key` (the first value stays: an entry is a pure function of its key). */
  set(key: string, value: T): void {
    if (this.current.has(key)) return;
    const w = this.weigh(key, value) + 64;
    if (this.weight + w > this.maxWeight && this.current.size > 0) {
      this.old = this.current;
      this.current = new Map();
      this.weight = 0;
    }
    this.current.set(key, value);
    this.weight += w;
  }

  /** Entries held in both generations. */
  get size(): number {
    return this.current.size + this.old.size;
  }
}
