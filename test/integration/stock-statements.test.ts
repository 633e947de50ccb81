import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database";
import { openPostgres } from "../../src/db/postgres";
import { createLogger } from "../../src/logger";
import { Projector } from "../../src/projection/projector";
import { allProjections } from "../../src/projection/projections";
import type { Actor } from "../../src/shared/auth";
import { systemClock, uuid } from "../../src/shared/clock";
import { CommandBus } from "../../src/write/commandBus";
import { createProduct } from "../../src/write/catalog/commands/createProduct";
import { cancelOrder } from "../../src/write/orders/commands/cancelOrder";
import { placeOrder } from "../../src/write/orders/commands/placeOrder";
import { freshDatabase, type TestDatabase } from "../support/db";

// placeOrder's stock load and the stock update of every order command take their products as
// one array, through write.each (the update through batchRows), and the projections' updates of a
// live batch through read.each (batchRows). Each line's quantity must land on its own product, and Postgres must keep one plan
// for them (a generic plan) instead of planning them at every call.

const admin: Actor = { kind: "user", id: "ops", role: "admin" };
const customer: Actor = { kind: "user", id: "stock-customer", role: "customer" };

let tdb: TestDatabase;
let db: Database;
let bus: CommandBus;

beforeAll(async () => {
  tdb = await freshDatabase();
  // One connection: the prepared statements looked at below are that session's.
  db = openPostgres(tdb.url, 1);
  bus = new CommandBus(db, systemClock, uuid, { orderPaymentTimeoutSeconds: 900 });
});
afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

async function product(stock: number): Promise<string> {
  const sku = `STK-${randomUUID().slice(0, 8)}`;
  const { result } = await bus.dispatch(
    createProduct,
    { sku, name: sku, description: null, priceCents: 250, initialStock: stock },
    admin,
    { correlationId: randomUUID() },
  );
  return result.productId;
}

async function stock(ids: string[]): Promise<Array<{ onHand: number; reserved: number; available: number }>> {
  const rows = await tdb.sql<{ id: string; on_hand: number; reserved: number; available: number }>(
    `SELECT product_id::text AS id, on_hand, reserved, available FROM "write"."inventory" WHERE product_id = ANY($1::uuid[])`,
    [ids],
  );
  return ids.map((id) => {
    const row = rows.find((r) => r.id === id)!;
    return { onHand: row.on_hand, reserved: row.reserved, available: row.available };
  });
}

const order = (lines: Array<{ productId: string; quantity: number }>) =>
  bus.dispatch(placeOrder, { idempotencyKey: randomUUID(), lines }, customer, { correlationId: randomUUID() });

describe("an order over several products", () => {
  it("reserves each line's quantity on its own product, and a cancellation releases each", async () => {
    const [a, b, c] = [await product(10), await product(20), await product(30)];
    // Lines out of product order, one product twice (merged into one line of 4).
    const { result } = await order([
      { productId: c, quantity: 3 },
      { productId: a, quantity: 1 },
      { productId: b, quantity: 2 },
      { productId: a, quantity: 3 },
    ]);
    expect(await stock([a, b, c])).toEqual([
      { onHand: 10, reserved: 4, available: 6 },
      { onHand: 20, reserved: 2, available: 18 },
      { onHand: 30, reserved: 3, available: 27 },
    ]);
    await bus.dispatch(cancelOrder, { orderId: result.orderId }, customer, { correlationId: randomUUID() });
    expect(await stock([a, b, c])).toEqual([
      { onHand: 10, reserved: 0, available: 10 },
      { onHand: 20, reserved: 0, available: 20 },
      { onHand: 30, reserved: 0, available: 30 },
    ]);
  });

  it("does the same for an order of more lines than a short list holds (unnest, past 32)", async () => {
    const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => product(10 + i)));
    const { result } = await order(ids.map((productId, i) => ({ productId, quantity: 1 + (i % 3) })));
    expect(await stock(ids)).toEqual(
      ids.map((_, i) => ({ onHand: 10 + i, reserved: 1 + (i % 3), available: 9 + i - (i % 3) })),
    );
    await bus.dispatch(cancelOrder, { orderId: result.orderId }, customer, { correlationId: randomUUID() });
    expect(await stock(ids)).toEqual(ids.map((_, i) => ({ onHand: 10 + i, reserved: 0, available: 10 + i })));
  });
});

describe("the statements over a short list (stock moves, a live batch's updates)", () => {
  it("are planned once for any short list (a generic plan), not at every call", async () => {
    const products = [await product(100), await product(100), await product(100)];
    const projector = new Projector(db, allProjections, {
      batchSize: 100,
      pollMs: 100,
      instanceId: "stock-statements",
      logger: createLogger("silent"),
    });
    await projector.catchUp();
    for (let n = 0; n < 12; n++) {
      // One line, then two, then three: the same statements whatever the count; each order a
      // batch of the projector's of its own (on the same one connection).
      const { result } = await order(products.slice(0, 1 + (n % 3)).map((productId) => ({ productId, quantity: 1 })));
      await projector.catchUp();
      await bus.dispatch(cancelOrder, { orderId: result.orderId }, customer, { correlationId: randomUUID() });
      await projector.catchUp();
    }
    const plans = await db.sql.query<{ statement: string; generic: number; custom: number }>(
      `SELECT statement, generic_plans::int AS generic, custom_plans::int AS custom
         FROM pg_prepared_statements WHERE statement LIKE '%"each"(%'`,
    );
    const load = plans.filter((p) => p.statement.includes("FOR NO KEY UPDATE"));
    // placeOrder's one statement for the stock, the order and its lines (moveStock within it).
    const reserve = plans.filter((p) => p.statement.includes(`INSERT INTO "write"."order_lines"`));
    const projected = plans.filter((p) => p.statement.includes(`UPDATE "read"."products"`));
    const cancelled = plans.filter((p) => p.statement.includes(`UPDATE "read"."orders"`));
    expect(load).toHaveLength(1);
    expect(reserve).toHaveLength(1);
    expect(projected).toHaveLength(1);
    expect(cancelled).toHaveLength(1);
    for (const p of [...load, ...reserve, ...projected, ...cancelled]) {
      // Postgres plans the first five calls for their values, then keeps the generic plan when it
      // costs no more; the statements planned with unnest() or = ANY(…) stayed at custom plans.
      expect(p.custom).toBeLessThanOrEqual(5);
      expect(p.generic).toBeGreaterThanOrEqual(7);
    }
  });
});
