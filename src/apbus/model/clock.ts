// Time for the model: host requests drain "after some seconds" on a clock the tests control,
// so no unit test ever sleeps. Seconds as a float, like a monotonic clock.

export interface Clock {
  /** Seconds since an arbitrary origin; never goes backwards. */
  now(): number;
}

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  advance(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`cannot advance a clock by ${seconds} s`);
    this.#now += seconds;
  }
}

/** Wall-clock seconds (monotonic), for the simulated agent in `dev`. */
export class SystemClock implements Clock {
  now(): number {
    return performance.now() / 1000;
  }
}
