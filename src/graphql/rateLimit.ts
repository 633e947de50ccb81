import { AppError } from "../shared/errors";

/** Buckets held before the full ones are looked for and forgotten. */
const SWEEP_AT = 10_000;

/**
 * Token buckets by key (an actor's id), one instance's own: each holds up to `burst` tokens and
 * refills at `perSecond`; a mutation takes one. Buckets that are full again are forgotten, so
 * memory follows the actors active in the last few seconds. A sweep looks at every bucket, so
 * the next waits until twice as many as it left are held: with more than SWEEP_AT actors active
 * at once, a take still costs O(1) on average, not a sweep each.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private sweepAt = SWEEP_AT;
  private sweepCount = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes a token for `key`: 0 when there was one, else the seconds until there will be (rounded up). */
  take(key: string): number {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    const taken = bucket.tokens >= 1;
    if (taken) bucket.tokens -= 1;
    // Swept after the take: this actor's bucket, full a moment ago, is not forgotten with its take.
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.sweepAt) {
      this.forgetFull(now);
      this.sweepCount += 1;
      this.sweepAt = Math.max(SWEEP_AT, 2 * this.buckets.size);
    }
    return taken ? 0 : this.secondsUntilOne(bucket.tokens);
  }

  /** What `take` would answer, without taking: lets a request that is sure to be refused be refused early. */
  peek(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    const tokens = bucket.tokens + ((this.now() - bucket.at) / 1000) * this.perSecond;
    return tokens >= 1 ? 0 : this.secondsUntilOne(tokens);
  }

  /** Actors with a bucket now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Sweeps so far (see the class comment). */
  get sweeps(): number {
    return this.sweepCount;
  }

  private secondsUntilOne(tokens: number): number {
    return Math.max(1, Math.ceil((1 - tokens) / this.perSecond));
  }

  private forgetFull(now: number): void {
    for (const [key, b] of this.buckets)
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(key);
  }
}

/** A mutation refused for its actor's rate (MUTATIONS_PER_SECOND): RATE_LIMITED, and when to try again. */
export const rateLimited = (retryAfterSeconds: number) =>
  new AppError("RATE_LIMITED", `too many mutations: try again in ${retryAfterSeconds} s`, { retryAfterSeconds });

/**
 * At most `max` commands of one actor run at once on this instance (MUTATION_CONCURRENCY); the
 * others wait their turn, in order. What the rate allows in a burst then takes a few pooled
 * connections, not all of them: other actors' requests still find one.
 */
export class ActorConcurrency {
  private readonly slots = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(private readonly max: number) {}

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = { running: 0, waiting: [] }));
    if (slot.running < this.max) slot.running += 1;
    else await new Promise<void>((resolve) => slot.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = slot.waiting.shift();
      if (next)
        next(); // the slot passes to the next in line
      else if (--slot.running === 0) this.slots.delete(key);
    }
  }
}
