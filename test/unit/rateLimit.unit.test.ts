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
});
