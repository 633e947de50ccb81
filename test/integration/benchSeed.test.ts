import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgres } from "../../src/db/postgres";
import { verify } from "../../src/verify/verify";
import { seedProducts } from "../bench/lib/database";
import { growLog, histogramQuantile } from "../bench/lib/logSize";
import { setupFile } from "../support/app";

describe("the bench's log seeding", () => {
  let t: Awaited<ReturnType<typeof setupFile>>;
  let pool: pg.Pool;
  beforeAll(async () => {
    t = await setupFile();
    pool = new pg.Pool({ connectionString: t.db.url, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await t?.teardown();
  });

  it("writes what the commands write, one transaction each, so verify finds the write model, the log and the read tables agreeing", async () => {
    await seedProducts(pool, 30);
    const grown = await growLog({ name: t.db.name, url: t.db.url, pool, drop: async () => undefined }, 500, 2);
    expect(grown.events).toBeGreaterThanOrEqual(500);
    const { rows } = await pool.query<{ events: string; placed: string; txs: string; keys: string }>(
      `SELECT count(*)::text AS events, count(*) FILTER (WHERE type = 'OrderPlaced')::text AS placed,
              count(DISTINCT tx_id)::text AS txs,
              (SELECT count(*) FROM "write"."command_keys" WHERE command = 'placeOrder')::text AS keys
         FROM "write"."events" WHERE stream_type = 'order'`,
    );
    // Every command in a transaction of its own: placements and cancellations alike.
    expect(rows[0]!.txs).toBe(rows[0]!.events);
    expect(Number(rows[0]!.events)).toBe(grown.events - 30);
    expect(rows[0]!.keys).toBe(rows[0]!.placed);
    const db = openPostgres(t.db.url, 2);
    try {
      const result = await verify(db, { waitMs: 20_000 });
      expect(result.problems).toEqual([]);
      expect(result.ok).toBe(true);
    } finally {
      await db.close();
    }
  });
});

describe("a quantile from a histogram's buckets scraped twice", () => {
  const scrape = (counts: number[]) => new Map([0.001, 0.01, 0.1, Infinity].map((le, i) => [le, counts[i]!]));

  it("interpolates inside the bucket holding the rank, over the observations between the scrapes", () => {
    // Between the scrapes: 10 observations ≤ 1 ms, 80 in (1, 10] ms, 10 in (10, 100] ms.
    const before = scrape([5, 5, 5, 5]);
    const after = scrape([15, 95, 105, 105]);
    expect(histogramQuantile(before, after, 0.5)).toBeCloseTo(0.001 + 0.009 * (40 / 80));
    expect(histogramQuantile(before, after, 0.99)).toBeCloseTo(0.01 + 0.09 * (9 / 10));
  });

  it("is null when nothing was observed, and the +Inf bucket's lower bound when the rank falls there", () => {
    expect(histogramQuantile(scrape([1, 1, 1, 1]), scrape([1, 1, 1, 1]), 0.5)).toBeNull();
    expect(histogramQuantile(scrape([0, 0, 0, 0]), scrape([0, 0, 0, 10]), 0.99)).toBe(0.1);
  });
});
