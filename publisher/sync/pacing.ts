/**
 * Pacing to an upstream's published limit: at most `limit` requests in any
 * rolling window of `windowMs` (NVD: 5 per 30 s without an API key, 50 with
 * one). `take()` resolves when one more request may start, and counts it.
 * The clock and the sleep are injectable, so tests run the same logic with a
 * window of milliseconds.
 */

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

export class RollingWindow {
  /** Start times of the requests still inside the window, oldest first. */
  private readonly starts: number[] = [];
  /** Takes waiting their turn: one at a time, in order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly clock: Clock = realClock,
  ) {
    if (!(limit >= 1) || !(windowMs > 0)) throw new Error(`a rolling window needs a limit >= 1 and a window > 0 (got ${limit} per ${windowMs} ms)`);
  }

  /** Waits until a request may start without exceeding the limit, then counts it. */
  take(): Promise<void> {
    const turn = this.queue.then(() => this.wait());
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async wait(): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      while (this.starts.length && this.starts[0]! <= now - this.windowMs) this.starts.shift();
      if (this.starts.length < this.limit) {
        this.starts.push(now);
        return;
      }
      // The oldest start leaves the window at starts[0] + windowMs: one more may start then.
      await this.clock.sleep(this.starts[0]! + this.windowMs - now + 1);
    }
  }
}
