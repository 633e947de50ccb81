import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { openPostgres } from "../../src/db/postgres";
import type { Database } from "../../src/db/database";
import { createLogger } from "../../src/logger";
import { NEXT_DEADLINE, OrderExpiry } from "../../src/process/orderExpiry";
import { systemActor, type Actor } from "../../src/shared/auth";
import { uuid, type Clock } from "../../src/shared/clock";
import { AppError } from "../../src/shared/errors";
import { CommandBus } from "../../src/write/commandBus";
import { createProduct } from "../../src/write/catalog/commands/createProduct";
import { expireOrder } from "../../src/write/orders/commands/expireOrder";
import { payOrder } from "../../src/write/orders/commands/payOrder";
import { placeOrder } from "../../src/write/orders/commands/placeOrder";
import { freshDatabase, type TestDatabase } from "../support/db";
import { eventually } from "../support/wait";

// The order expiry (src/process/orderExpiry.ts) on a real database, its time given by the test:
// the dispatcher and the commands see the same controllable clock.

const TIMEOUT_SECONDS = 60;
const admin: Actor = { kind: "user", id: "ops", role: "admin" };
const customer: Actor = { kind: "user", id: "expiry-customer", role: "customer" };

class TestClock implements Clock {
  constructor(public at: Date) {}
  now(): Date {
    return new Date(this.at);
  }
  set(at: Date): void {
    this.at = at;
  }
}

let tdb: TestDatabase;
let db: Database;
const T0 = new Date("2026-12-02T10:00:00.000Z");
const deadline = (placedAt: Date) => new Date(placedAt.getTime() + TIMEOUT_SECONDS * 1000);
const busAt = (clock: Clock) => new CommandBus(db, clock, uuid, { orderPaymentTimeoutSeconds: TIMEOUT_SECONDS });
const dispatchers: OrderExpiry[] = [];

beforeAll(async () => {
  tdb = await freshDatabase();
  db = openPostgres(tdb.url, 10);
});
afterAll(async () => {
  await Promise.all(dispatchers.map((d) => d.stop()));
  await db?.close();
  await tdb?.drop();
});

function dispatcher(clock: Clock, instanceId = "expiry-test"): OrderExpiry {
  const expiry = new OrderExpiry(db, busAt(clock), clock, {
    batchSize: 7, // several batches for the larger tests
    instanceId,
    logger: createLogger("silent"),
  });
  dispatchers.push(expiry);
  return expiry;
}

async function product(stock: number): Promise<string> {
  const sku = `EXP-${randomUUID().slice(0, 8)}`;
  const { result } = await busAt(new TestClock(T0)).dispatch(
    createProduct,
    { sku, name: sku, description: null, priceCents: 100, initialStock: stock },
    admin,
    { correlationId: randomUUID() },
  );
  return result.productId;
}

async function place(productId: string, at: Date, quantity = 1): Promise<{ orderId: string; correlationId: string }> {
  const correlationId = randomUUID();
  const { result } = await busAt(new TestClock(at)).dispatch(
    placeOrder,
    { idempotencyKey: randomUUID(), lines: [{ productId, quantity }] },
    customer,
    { correlationId },
  );
  return { orderId: result.orderId, correlationId };
}

const statusOf = async (orderIds: string[]) =>
  new Map(
    (
      await tdb.sql<{ id: string; status: string; expires_at: Date | null }>(
        `SELECT id::text AS id, status, expires_at FROM "write".orders WHERE id = ANY($1::uuid[])`,
        [orderIds],
      )
    ).map((r) => [r.id, r]),
  );

const eventsOf = (orderIds: string[]) =>
  tdb.sql<{
    stream_id: string;
    type: string;
    position: string;
    data: Record<string, unknown>;
    metadata: Record<string, unknown>;
  }>(
    // e.position: a bare position would be the text output column ('10' before '9').
    `SELECT e.stream_id::text AS stream_id, e.type, e.position::text AS position, e.data, e.metadata FROM "write".events e
      WHERE e.stream_id = ANY($1::uuid[]) ORDER BY e.position`,
    [orderIds],
  );

const available = async (productId: string) =>
  (
    await tdb.sql<{ available: number }>(`SELECT available FROM "write".inventory WHERE product_id = $1`, [productId])
  )[0]!.available;

describe("the order expiry", () => {
  it("cancels the orders whose deadline passed (PAYMENT_TIMEOUT, stock released, as the system, caused by the OrderPlaced), and no other", async () => {
    const productId = await product(100);
    const early = await Promise.all([0, 1, 2].map((i) => place(productId, new Date(T0.getTime() + i * 1000), 2)));
    const late = await place(productId, new Date(T0.getTime() + 30_000), 2);
    expect(await available(productId)).toBe(92);

    const clock = new TestClock(new Date(deadline(T0).getTime() + 5_000)); // the three early ones are due
    const expiry = dispatcher(clock);
    expect(await expiry.due()).toEqual({ orders: 3, oldestSeconds: 5 });
    expiry.start();
    await eventually(async () => (await expiry.due()).orders === 0, {
      timeoutMs: 10_000,
      what: "the due orders to expire",
    });

    const ids = early.map((o) => o.orderId);
    const statuses = await statusOf([...ids, late.orderId]);
    for (const id of ids) expect(statuses.get(id)).toMatchObject({ status: "CANCELLED", expires_at: null });
    expect(statuses.get(late.orderId)).toMatchObject({
      status: "PLACED",
      expires_at: deadline(new Date(T0.getTime() + 30_000)),
    });
    expect(await available(productId)).toBe(98);

    const events = await eventsOf(ids);
    for (const order of early) {
      const [placed, cancelled, ...more] = events.filter((e) => e.stream_id === order.orderId);
      expect(more).toEqual([]);
      expect(cancelled).toMatchObject({
        type: "OrderCancelled",
        data: { reason: "PAYMENT_TIMEOUT", previousStatus: "PLACED", lines: [{ productId, quantity: 2 }] },
        metadata: {
          actor: { id: "system", role: "system" },
          command: "expireOrder",
          correlationId: order.correlationId,
          causationId: placed!.position,
        },
      });
    }

    clock.set(deadline(new Date(T0.getTime() + 30_000))); // now the late one too, while it runs
    await eventually(async () => (await statusOf([late.orderId])).get(late.orderId)?.status === "CANCELLED", {
      timeoutMs: 10_000,
      what: "the late order to expire once its deadline passes",
    });
    expect(await available(productId)).toBe(100);
    await expiry.stop();
  });

  it("expires at start-up what fell due while no instance ran, batch after batch", async () => {
    const productId = await product(100);
    const orders = await Promise.all(Array.from({ length: 20 }, () => place(productId, T0)));
    const expiry = dispatcher(new TestClock(new Date(deadline(T0).getTime() + 3_600_000)));
    expiry.start();
    await eventually(
      async () => [...(await statusOf(orders.map((o) => o.orderId))).values()].every((o) => o.status === "CANCELLED"),
      {
        timeoutMs: 15_000,
        what: "every overdue order to expire",
      },
    );
    expect(await available(productId)).toBe(100);
    const cancelled = (await eventsOf(orders.map((o) => o.orderId))).filter((e) => e.type === "OrderCancelled");
    expect(cancelled).toHaveLength(20);
    await expiry.stop();
  });

  it("leaves paid and cancelled orders alone, and answers a second expiry of the same order as the first", async () => {
    const productId = await product(10);
    const paid = await place(productId, T0);
    const expired = await place(productId, T0);
    await busAt(new TestClock(T0)).dispatch(payOrder, { orderId: paid.orderId }, admin, {
      correlationId: randomUUID(),
    });
    const late = busAt(new TestClock(deadline(T0)));
    const options = { correlationId: expired.correlationId };
    const first = await late.dispatch(expireOrder, { orderId: expired.orderId }, systemActor, options);
    const again = await late.dispatch(expireOrder, { orderId: expired.orderId }, systemActor, options);
    // the idempotency key of the order: the first outcome (its result and position), nothing appended
    expect({ result: again.result, position: again.position }).toEqual({
      result: first.result,
      position: first.position,
    });
    await expect(late.dispatch(expireOrder, { orderId: paid.orderId }, systemActor, options)).rejects.toMatchObject({
      code: "INVALID_STATE",
    });
    const events = await eventsOf([paid.orderId, expired.orderId]);
    expect(events.map((e) => [e.stream_id === paid.orderId ? "paid" : "expired", e.type])).toEqual([
      ["paid", "OrderPlaced"],
      ["expired", "OrderPlaced"],
      ["paid", "OrderPaid"],
      ["expired", "OrderCancelled"],
    ]);
  });

  it("is refused to anyone but the system", async () => {
    const productId = await product(1);
    const order = await place(productId, T0);
    for (const actor of [admin, customer])
      await expect(
        busAt(new TestClock(deadline(T0))).dispatch(expireOrder, { orderId: order.orderId }, actor, {
          correlationId: randomUUID(),
        }),
      ).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("lets exactly one of payOrder and the expiry win a race, 100 times: never both, the loser INVALID_STATE", async () => {
    const productId = await product(100);
    const orders = await Promise.all(Array.from({ length: 100 }, () => place(productId, T0)));
    const payer = busAt(new TestClock(new Date(deadline(T0).getTime() - 1))); // a moment before the deadline
    const expirer = busAt(new TestClock(deadline(T0)));
    const outcomes = await Promise.all(
      orders.map(async ({ orderId, correlationId }) => {
        const [pay, expire] = await Promise.allSettled([
          payer.dispatch(payOrder, { orderId }, admin, { correlationId: randomUUID() }),
          expirer.dispatch(expireOrder, { orderId }, systemActor, { correlationId }),
        ]);
        const codeOf = (r: PromiseSettledResult<unknown>) =>
          r.status === "fulfilled" ? "won" : r.reason instanceof AppError ? r.reason.code : String(r.reason);
        return [codeOf(pay), codeOf(expire)].sort().join(" ");
      }),
    );
    expect(new Set(outcomes)).toEqual(new Set(["INVALID_STATE won"]));
    const events = await eventsOf(orders.map((o) => o.orderId));
    const after = events.filter((e) => e.type !== "OrderPlaced");
    expect(after).toHaveLength(100);
    expect(new Set(after.map((e) => e.stream_id)).size).toBe(100);
    const cancelled = after.filter((e) => e.type === "OrderCancelled").length;
    expect(await available(productId)).toBe(cancelled); // what expired came back; what was paid stays reserved
  });

  it("keeps expiring the other orders when one fails, and expires that one once the cause is fixed", async () => {
    const [poisoned, healthy] = [await product(10), await product(10)];
    const bad = await place(poisoned, T0, 2);
    const good = await Promise.all([1, 2, 3].map(() => place(healthy, T0)));
    // Damage: the inventory no longer holds the bad order's reservation, so releasing it breaks
    // a check constraint (a failure that is neither a rule of the domain nor a lost connection).
    await tdb.sql(`UPDATE "write".inventory SET reserved = 0, available = on_hand WHERE product_id = $1`, [poisoned]);
    const expiry = dispatcher(new TestClock(new Date(deadline(T0).getTime() + 1000)));
    expiry.start();
    const ids = good.map((o) => o.orderId);
    await eventually(async () => [...(await statusOf(ids)).values()].every((o) => o.status === "CANCELLED"), {
      timeoutMs: 10_000,
      what: "the healthy orders to expire",
    });
    expect((await statusOf([bad.orderId])).get(bad.orderId)?.status).toBe("PLACED");
    await eventually(async () => (await expiry.due()).orders === 1, { what: "only the damaged order left due" });
    await tdb.sql(`UPDATE "write".inventory SET reserved = 2, available = on_hand - 2 WHERE product_id = $1`, [
      poisoned,
    ]);
    await eventually(async () => (await statusOf([bad.orderId])).get(bad.orderId)?.status === "CANCELLED", {
      timeoutMs: 10_000,
      what: "the repaired order to expire at a later look",
    });
    expect(await available(poisoned)).toBe(10);
    await expiry.stop();
  });

  it("has one dispatcher at a time among instances; another takes over when it stops", async () => {
    const clock = new TestClock(T0);
    const a = dispatcher(clock, "instance-a");
    const b = dispatcher(clock, "instance-b");
    a.start();
    b.start();
    await eventually(() => a.isLeader !== b.isLeader, { what: "one of the two to lead" });
    const [leader, standby] = a.isLeader ? [a, b] : [b, a];
    await leader.stop();
    await eventually(() => standby.isLeader, { timeoutMs: 5000, what: "the standby to take over" });
    await standby.stop();
  });

  it("finds the next deadline in the first entry of its index, however many orders await payment and however stale the statistics", async () => {
    // A database of its own: thousands of unpaid orders, placed after the table was last analyzed.
    const own = await freshDatabase();
    try {
      await own.sql(`
        INSERT INTO "write"."orders" (id, customer_id, status, total_cents, item_count, version, placed_at, updated_at)
        SELECT gen_random_uuid(), 'before-deadlines', 'PLACED', 100, 1, 1, now(), now() FROM generate_series(1, 1000)`);
      await own.sql(`ANALYZE "write"."orders"`);
      await own.sql(
        `
        INSERT INTO "write"."orders" (id, customer_id, status, total_cents, item_count, version, placed_at, updated_at, expires_at)
        SELECT gen_random_uuid(), 'unpaid', 'PLACED', 100, 1, 1, now(), now(), $1::timestamptz + g * interval '1 second'
          FROM generate_series(1, 5000) AS g`,
        [T0.toISOString()],
      );
      const [next] = await own.sql<{ at: Date }>(NEXT_DEADLINE.text, [...NEXT_DEADLINE.values]);
      expect(next!.at.getTime()).toBe(T0.getTime() + 1000);
      const [{ "QUERY PLAN": plan }] = (await own.sql(`EXPLAIN (ANALYZE, FORMAT JSON) ${NEXT_DEADLINE.text}`, [
        ...NEXT_DEADLINE.values,
      ])) as [{ "QUERY PLAN": [{ Plan: PlanNode }] }];
      // min(expires_at) read all 5,000 entries here, a heap fetch each, on every look.
      const scans = planNodes(plan[0].Plan).filter((n) => n["Relation Name"] === "orders");
      expect(scans.length).toBeGreaterThan(0);
      for (const scan of scans) expect(scan["Actual Rows"]).toBeLessThanOrEqual(1);
    } finally {
      await own.drop();
    }
  });
});

interface PlanNode {
  "Relation Name"?: string;
  "Actual Rows": number;
  Plans?: PlanNode[];
}

const planNodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(planNodes)];
