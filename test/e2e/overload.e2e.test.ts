import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { setupFile } from "../support/app";
import { documentOf, metricOf, token, type GqlError } from "../support/client";
import { eventually } from "../support/wait";
import { CreateProductDocument, PlaceOrderDocument } from "../../src/storefront/generated/graphql";

// Shedding (MUTATION_QUEUE_MS): while the write database's transactions queue for a connection
// longer than the target, window after window, a new mutation is refused at once with OVERLOADED
// (HTTP 503, Retry-After), and writes nothing; what was admitted completes. A slow database is
// made here with a trigger that sleeps in every stock update, and one pooled connection. The
// trigger first takes a lock the test can hold (GATE): while it does, the first order keeps the
// connection and the others wait for it, however slowly they arrive.
const SLOW_UPDATE_SECONDS = 0.15;
const QUEUED = 8;
const GATE = 424_242;

let t: Awaited<ReturnType<typeof setupFile>>;
let productId: string;
beforeAll(async () => {
  t = await setupFile({ dbPoolSize: 1, mutationQueueMs: 50 });
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku: `SHED-${randomUUID().slice(0, 8)}`, name: "Flash sale lamp", priceCents: 100, initialStock: 1000 },
  });
  productId = createProduct.product!.id;
});
afterAll(async () => {
  await t?.teardown();
});

const slowDatabase = async (slow: boolean) =>
  slow
    ? t.db.sql(`
        CREATE FUNCTION write.test_slow_stock() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN
               PERFORM pg_advisory_xact_lock_shared(${GATE});
               PERFORM pg_sleep(${SLOW_UPDATE_SECONDS});
               RETURN NEW;
             END $$;
        CREATE TRIGGER test_slow_stock BEFORE UPDATE ON write.inventory
          FOR EACH ROW EXECUTE FUNCTION write.test_slow_stock();`)
    : t.db.sql(`DROP TRIGGER test_slow_stock ON write.inventory; DROP FUNCTION write.test_slow_stock();`);

/** A sample of /metrics (its deadlines gauge reads the write database, waiting a second at most). */
const metric = (name: string) => metricOf(t.url, name);

const orderOf = (key: string) => ({ input: { idempotencyKey: key, lines: [{ productId, quantity: 1 }] } });
const available = async () =>
  (
    await t.db.sql<{ available: number }>("SELECT available FROM write.inventory WHERE product_id = $1", [productId])
  )[0]!.available;

/** placeOrder over HTTP, as a customer of its own: the status, Retry-After and body. */
async function placeOrder(key: string) {
  const res = await fetch(`${t.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token("customer", `shed-${key}`)}` },
    body: JSON.stringify({ ...documentOf(PlaceOrderDocument), variables: orderOf(key) }),
  });
  const body = (await res.json()) as { data?: { placeOrder: { order: { status: string } } }; errors?: GqlError[] };
  return { key, status: res.status, retryAfter: res.headers.get("retry-after"), body };
}

describe("mutations shed while the write database's queue stands (MUTATION_QUEUE_MS)", () => {
  it("refuses a new mutation at once with OVERLOADED over HTTP and graphql-ws, writes nothing, and admits again once the queue is gone", async () => {
    const before = await available();
    await slowDatabase(true);
    const sent: ReturnType<typeof placeOrder>[] = [];
    let probing: NodeJS.Timeout | undefined;
    const gate = new pg.Client({ connectionString: t.db.url });
    await gate.connect();
    let gated = false;
    try {
      await gate.query("SELECT pg_advisory_lock($1)", [GATE]);
      gated = true;
      // A burst: the first order takes the connection and stops at the gate; the others are
      // admitted and wait for the connection. No connection is handed out meanwhile, so no window
      // can show a standing queue, and the burst is admitted whole however long it takes to come.
      for (let i = 0; i < QUEUED; i++) sent.push(placeOrder(`queued-${i}`));
      await eventually(async () => (await metric("shop_write_transactions_waiting")) >= QUEUED - 1, {
        timeoutMs: 20_000,
        what: "the burst admitted, waiting for the connection",
      });
      await gate.query("SELECT pg_advisory_unlock($1)", [GATE]);
      gated = false;
      // Each now waits about SLOW_UPDATE_SECONDS longer than the one before it: the queue soon
      // stands. Orders keep arriving until one is refused (those admitted meanwhile join the queue).
      let probes = 0;
      const refused = new Promise<Awaited<ReturnType<typeof placeOrder>>>((resolve) => {
        probing = setInterval(() => {
          const probe = placeOrder(`probe-${probes++}`);
          sent.push(probe);
          void probe.then(
            (r) => r.status === 503 && resolve(r),
            () => undefined,
          );
        }, 25);
      });
      const first = await Promise.race([
        refused,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no order was refused in 10 s")), 10_000)),
      ]);
      clearInterval(probing);
      expect(first.retryAfter).toBe("1");
      // Refused before GraphQL ran (no data) or, had the queue stood up only after it passed that
      // check, in its resolver (data null): the same code, status and Retry-After either way.
      expect(first.body.data ?? null).toBeNull();
      expect(first.body.errors?.[0]?.extensions).toEqual({ code: "OVERLOADED", retryable: true, retryAfterSeconds: 1 });

      // A scrape of /metrics samples the gauge at once (then waits a second at most for its
      // deadlines read behind the queue): asked now, while the queue is at its longest.
      const scraped = metric("shop_mutations_shedding").catch(() => undefined);

      // The same over graphql-ws (refused in the resolver there: the same code). The queue still
      // stands: it is several orders long.
      const ws = t.customer("shed-ws").ws();
      try {
        const overWs = await new Promise<GqlError[] | undefined>((resolve, reject) =>
          ws.subscribe(
            { query: "", ...documentOf(PlaceOrderDocument), variables: orderOf("ws") },
            { next: (r) => resolve(r.errors as GqlError[] | undefined), error: reject, complete: () => undefined },
          ),
        );
        expect(overWs?.[0]?.extensions).toMatchObject({ code: "OVERLOADED", retryable: true });
      } finally {
        await ws.dispose();
      }
      // A scrape of /metrics, sent with the refusal, says so too.
      expect(await scraped).toBe(1);
    } finally {
      clearInterval(probing);
      if (gated) await gate.query("SELECT pg_advisory_unlock($1)", [GATE]);
      await gate.end();
      await Promise.allSettled(sent);
      await slowDatabase(false);
    }
    // Every order was placed or refused; what was admitted completed, nothing of the refused was written.
    const outcomes = await Promise.all(sent);
    const placed = outcomes.filter((o) => o.status === 200);
    const shed = outcomes.filter((o) => o.status === 503);
    expect(placed.length + shed.length).toBe(outcomes.length);
    expect(outcomes.slice(0, QUEUED).every((o) => o.status === 200)).toBe(true); // the burst
    for (const o of placed) expect(o.body.data?.placeOrder.order.status).toBe("PLACED");
    expect(await available()).toBe(before - placed.length);
    const keys = await t.db.sql<{ key: string }>("SELECT key FROM write.command_keys WHERE actor_id LIKE 'shed-%'");
    expect(keys.map((k) => k.key).sort()).toEqual(placed.map((o) => o.key).sort());
    expect(await metric("shop_mutations_shed_total")).toBe(shed.length + 1);

    // The queue gone, a refused client's retry (same key) is admitted, and placed now.
    expect(await metric("shop_mutations_shedding")).toBe(0);
    const retried = await placeOrder(shed[0]!.key);
    expect(retried.body.data?.placeOrder.order.status).toBe("PLACED");
    expect(await available()).toBe(before - placed.length - 1);
  });
});
