import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/http/metrics";
import type { DueDeadlines } from "../../src/process/orderExpiry";
import type { ProjectionQueries, ProjectionStatusRow } from "../../src/query/projections.queries";

/** A read the test answers when it chooses, and how many callers wait for it. */
function heldRead<T>() {
  const callers: ((value: T) => void)[] = [];
  return {
    waiting: () => callers.length,
    read: () => new Promise<T>((resolve) => callers.push(resolve)),
    answer: async (value: T) => {
      for (const resolve of callers.splice(0)) resolve(value);
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

const status = (name: string, lagEvents: number): ProjectionStatusRow => ({
  name,
  position: "0",
  lagEvents,
  lagSeconds: 0,
  status: "RUNNING",
  lastError: null,
  failedPosition: null,
  updatedAt: new Date(),
  leader: null,
  lagMeasuredAt: new Date(),
});

/** The value of one sample of the scrape's text, undefined when the scrape has none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("Metrics: a scrape never waits behind the database", () => {
  it("answers within the read's deadline, keeps the last values while a read is late, and shares the late read", async () => {
    const statuses = heldRead<ProjectionStatusRow[]>();
    const due = heldRead<DueDeadlines>();
    const metrics = new Metrics({ statuses: statuses.read } as unknown as ProjectionQueries, () => 0, undefined, 250);
    metrics.watchDeadlines(due.read);

    // The first scrape: both reads are queued and late; it answers without their gauges' values.
    let text = await metrics.registry.metrics();
    expect(sample(text, 'shop_projection_lag_events{projection="catalog"}')).toBeUndefined();
    expect(sample(text, 'shop_metrics_read_age_seconds{read="projections"}')).toBe(-1);
    expect(sample(text, 'shop_metrics_read_age_seconds{read="deadlines"}')).toBe(-1);
    expect([statuses.waiting(), due.waiting()]).toEqual([1, 1]);

    // Another scrape while those reads still wait: it waits for the same ones, no new query.
    text = await metrics.registry.metrics();
    expect([statuses.waiting(), due.waiting()]).toEqual([1, 1]);

    // The reads end: the next scrape reads again, in time, and shows what it read.
    await statuses.answer([]);
    await due.answer({ orders: 0, oldestSeconds: 0 });
    const scrape = metrics.registry.metrics();
    await new Promise((resolve) => setImmediate(resolve));
    expect([statuses.waiting(), due.waiting()]).toEqual([1, 1]);
    await statuses.answer([status("catalog", 7)]);
    await due.answer({ orders: 3, oldestSeconds: 1.5 });
    text = await scrape;
    expect(sample(text, 'shop_projection_lag_events{projection="catalog"}')).toBe(7);
    expect(sample(text, "shop_order_deadlines_due")).toBe(3);
    expect(sample(text, "shop_order_deadlines_oldest_due_seconds")).toBe(1.5);
    expect(sample(text, 'shop_metrics_read_age_seconds{read="projections"}')).toBe(0);

    // Late again: the gauges keep the values of the last read that ended.
    text = await metrics.registry.metrics();
    expect(sample(text, 'shop_projection_lag_events{projection="catalog"}')).toBe(7);
    expect(sample(text, "shop_order_deadlines_due")).toBe(3);
    expect(sample(text, 'shop_metrics_read_age_seconds{read="deadlines"}')).toBeGreaterThan(0);

    // That late read ends between scrapes; the next scrape, late too, shows what it found.
    await statuses.answer([status("catalog", 9)]);
    await due.answer({ orders: 5, oldestSeconds: 2 });
    text = await metrics.registry.metrics();
    expect(sample(text, 'shop_projection_lag_events{projection="catalog"}')).toBe(9);
    expect(sample(text, "shop_order_deadlines_due")).toBe(5);
    const age = sample(text, 'shop_metrics_read_age_seconds{read="deadlines"}')!;
    expect(age).toBeGreaterThan(0);
    expect(age).toBeLessThan(1);
  });

  it("a failed read leaves the last values (the scrape still answers), and the next scrape reads again", async () => {
    let calls = 0;
    const projections = {
      statuses: () =>
        ++calls === 2 ? Promise.reject(new Error("connection refused")) : Promise.resolve([status("orders", calls)]),
    } as unknown as ProjectionQueries;
    const metrics = new Metrics(projections, () => 0);
    const lag = 'shop_projection_lag_events{projection="orders"}';
    const age = 'shop_metrics_read_age_seconds{read="projections"}';
    let text = await metrics.registry.metrics();
    expect([sample(text, lag), sample(text, age)]).toEqual([1, 0]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    text = await metrics.registry.metrics(); // the read fails
    expect(sample(text, lag)).toBe(1);
    expect(sample(text, age)).toBeGreaterThan(0);
    text = await metrics.registry.metrics();
    expect([sample(text, lag), sample(text, age)]).toEqual([3, 0]);
    expect(calls).toBe(3);
  });
});
