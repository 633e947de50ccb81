import { describe, expect, it } from "vitest";
import { TokenBuckets } from "../../src/graphql/rateLimit";

describe("token buckets per actor", () => {
  it("allows the burst, then one per 1/rate seconds, and says how long to wait", () => {
    let now = 0;
    const buckets = new TokenBuckets(2, 3, () => now);
    expect([buckets.take("a"), buckets.take("a"), buckets.take("a")]).toEqual([0, 0, 0]);
    expect(buckets.take("a")).toBe(1); // empty: a token in 0.5 s, said as 1 s
    now = 499;
    expect(buckets.take("a")).toBe(1);
    now = 1000; // 1 s at 2/s: the refused takes took nothing
    expect([buckets.take("a"), buckets.take("a")]).toEqual([0, 0]);
    expect(buckets.take("a")).toBe(1);
  });

  it("keeps actors apart, and refills no further than the burst", () => {
    let now = 0;
    const buckets = new TokenBuckets(1, 2, () => now);
    expect([buckets.take("a"), buckets.take("a"), buckets.take("a")]).toEqual([0, 0, 1]);
    expect(buckets.take("b")).toBe(0);
    now = 60_000;
    expect([buckets.take("a"), buckets.take("a"), buckets.take("a")]).toEqual([0, 0, 1]);
  });

  it("forgets the actors that went quiet, and sweeps rarely while more than 10,000 are active", () => {
    let now = 0;
    const buckets = new TokenBuckets(1, 5, () => now);
    // 40,000 actors, each with a mutation in the same second: none is full again, none forgotten
    for (let i = 0; i < 40_000; i++) expect(buckets.take(`actor-${i}`)).toBe(0);
    expect(buckets.size).toBe(40_000);
    // a sweep per doubling (10,000, 20,000), not one per take past 10,000
    expect(buckets.sweeps).toBe(2);
    // they go quiet and refill: the next sweep forgets them all, but not the take that caused it
    now = 10_000;
    let late = 0;
    while (buckets.sweeps === 2) buckets.take(`late-${late++}`);
    expect(buckets.size).toBe(late);
    expect(buckets.peek(`late-${late - 1}`)).toBe(0);
    for (let i = 0; i < 4; i++) buckets.take(`late-${late - 1}`);
    expect(buckets.take(`late-${late - 1}`)).toBe(1); // its first take still counted: five in all
  });
});
