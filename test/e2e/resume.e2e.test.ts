import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { setupFile } from "../support/app";
import { collect, type GqlError } from "../support/client";
import { eventually } from "../support/wait";
import { decodeRowPosition, encodeRowPosition, rowPositionSql } from "../../src/query/rowPosition";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  OrderUpdatedDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  ProductDocument,
  RestockProductDocument,
  ShipOrderDocument,
} from "../../src/storefront/generated/graphql";

// Stock levels, row positions, and subscriptions resumed from a position (CONTRACT.md,
// "Subscriptions"): a client that reconnects with the last position it saw gets the final state
// of every row that changed meanwhile, once, then the live changes.

const LOW = 3;
let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile({ lowStockThreshold: LOW });
});
afterAll(async () => t?.teardown());

async function createProduct(stock: number) {
  const sku = `RS-${randomUUID().slice(0, 8)}`;
  const data = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 100, initialStock: stock },
  });
  return data.createProduct.product!;
}

const restock = async (productId: string, quantity = 1) =>
  (await t.admin.ok(RestockProductDocument, { input: { productId, quantity } })).restockProduct.product!;

/** Subscribes and waits until the server holds the subscription, so what follows is live. */
async function subscribed<T, V>(
  document: Parameters<typeof collect<T, V>>[1],
  variables: V,
  topic: "products" | "orders",
  client = t.anonymous,
) {
  const ws = client.ws();
  const before = t.app.services.feed[topic].size;
  const sub = collect(ws, document, variables);
  await eventually(() => sub.errors.length > 0 || t.app.services.feed[topic].size > before, {
    what: "the subscription to start",
  });
  return {
    sub,
    async close() {
      sub.unsubscribe();
      await ws.dispose();
      await eventually(() => t.app.services.feed[topic].size <= before, { what: "the subscription to end" });
    },
  };
}

describe("stock levels", () => {
  it(`shows IN_STOCK, LOW_STOCK (at most LOW_STOCK_THRESHOLD=${LOW}) and OUT_OF_STOCK, and pushes each change of level`, async () => {
    const product = await createProduct(LOW + 1);
    expect(product.stockLevel).toBe("IN_STOCK");
    const { sub, close } = await subscribed(InventoryChangedDocument, { productIds: [product.id] }, "products");
    const customer = t.customer("level-buyer");
    const order = async (quantity: number) =>
      customer.ok(PlaceOrderDocument, {
        input: { idempotencyKey: randomUUID(), lines: [{ productId: product.id, quantity }] },
      });
    // One change at a time: a push carries the row as it is when loaded, so two quick changes
    // may arrive as the later state twice.
    const pushed = () =>
      sub.results.map((r) => [r.data?.inventoryChanged.available, r.data?.inventoryChanged.stockLevel]);
    await order(1); // LOW + 1 → LOW
    await eventually(() => pushed().length >= 1, { what: "the push of the first change" });
    await order(LOW); // → 0
    await eventually(() => pushed().length >= 2, { what: "the push of the second change" });
    expect(pushed()).toEqual([
      [LOW, "LOW_STOCK"],
      [0, "OUT_OF_STOCK"],
    ]);
    await close();
    const { product: row } = await t.anonymous.ok(ProductDocument, { id: product.id });
    expect(row).toMatchObject({ available: 0, inStock: false, stockLevel: "OUT_OF_STOCK" });
  });
});

describe("resuming inventoryChanged from a position", () => {
  it("replays the final state of each product changed while away, once, in the log's order, then goes live", async () => {
    const [a, b, c] = await Promise.all([createProduct(10), createProduct(10), createProduct(10)]);
    const ids = [a!.id, b!.id, c!.id];
    const first = await subscribed(InventoryChangedDocument, { productIds: ids }, "products");
    await restock(a!.id);
    await eventually(() => first.sub.results.length === 1, { what: "the first push" });
    const last = first.sub.results[0]!.data!.inventoryChanged;
    await first.close();

    // Away: three changes, one product changed twice.
    await restock(b!.id, 2);
    await restock(c!.id, 3);
    await restock(a!.id, 4);
    const finalA = await restock(a!.id, 5);

    const resumed = await subscribed(InventoryChangedDocument, { productIds: ids, after: last.position }, "products");
    await eventually(() => resumed.sub.results.length >= 3, { what: "the replay" });
    const replayed = resumed.sub.results.map((r) => r.data!.inventoryChanged);
    expect(replayed.map((p) => [p.id, p.available])).toEqual([
      [b!.id, 12],
      [c!.id, 13],
      [a!.id, 20],
    ]);
    expect(replayed[2]!.position).toBe(finalA.position);

    // Then live, with nothing of the replay again.
    await restock(b!.id);
    await eventually(() => resumed.sub.results.length >= 4, { what: "a live push after the replay" });
    expect(
      resumed.sub.results.slice(3).map((r) => [r.data!.inventoryChanged.id, r.data!.inventoryChanged.available]),
    ).toEqual([[b!.id, 13]]);
    await close(resumed);
  });

  it("does not skip a product changed by an older transaction that committed late (positions land out of order)", async () => {
    const [a, b] = await Promise.all([createProduct(10), createProduct(10)]);
    // Hold product A's write row, so that restocking A draws its transaction id (its idempotency
    // key's claim) and then waits; meanwhile B's restock takes a later transaction id, an earlier
    // position, and commits first. Released, A's event gets the later position.
    const blocker = new pg.Client({ connectionString: t.db.url });
    await blocker.connect();
    try {
      await blocker.query("BEGIN");
      await blocker.query(`SELECT 1 FROM "write".products WHERE id = $1 FOR UPDATE`, [a!.id]);
      const slow = t.admin.ok(RestockProductDocument, {
        input: { productId: a!.id, quantity: 1, idempotencyKey: randomUUID() },
      });
      await eventually(
        async () =>
          (
            await t.db.sql<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            )
          )[0]!.n > 0,
        { what: "A's restock to wait for the held row" },
      );
      const fast = t.admin.ok(RestockProductDocument, { input: { productId: b!.id, quantity: 1 } });
      // B's restock committed (its read-back waits for A's: the projector does not pass an open transaction)
      await eventually(
        async () =>
          (await t.db.sql(`SELECT 1 FROM "write".events WHERE stream_id = $1 AND type = 'StockAdjusted'`, [b!.id]))
            .length > 0,
        { what: "B's restock in the log" },
      );
      await blocker.query("ROLLBACK");
      const [slowPosition, fastPosition] = (await Promise.all([slow, fast])).map((r) => r.restockProduct.position);
      expect(BigInt(slowPosition!)).toBeGreaterThan(BigInt(fastPosition!)); // A's event: the later position...
    } finally {
      await blocker.end();
    }
    const rows = async () => {
      const [pa, pb] = await Promise.all([a!.id, b!.id].map((id) => t.anonymous.ok(ProductDocument, { id })));
      return [pa!.product!, pb!.product!] as const;
    };
    const [rowA, rowB] = await eventually(async () => {
      const r = await rows();
      return r[0].available === 11 && r[1].available === 11 && r;
    });
    // ...but the earlier transaction: applied first. A client that saw A's row resumes from it and gets B.
    const resumed = await subscribed(
      InventoryChangedDocument,
      { productIds: [a!.id, b!.id], after: rowA.position },
      "products",
    );
    await eventually(() => resumed.sub.results.length >= 1, { what: "B replayed" });
    expect(resumed.sub.results.map((r) => r.data!.inventoryChanged.id)).toEqual([b!.id]);
    expect(resumed.sub.results[0]!.data!.inventoryChanged.position).toBe(rowB.position);
    await close(resumed);
  });

  it("orders the products one event changed by id: a client that drops between two of them resumes and gets the second", async () => {
    const products = await Promise.all([createProduct(10), createProduct(10), createProduct(10)]);
    const ids = products.map((p) => p!.id);
    const { sub, close: closeFirst } = await subscribed(InventoryChangedDocument, { productIds: ids }, "products");
    // One order of all three: one event changes the three rows.
    await t.customer("multi-line").ok(PlaceOrderDocument, {
      input: { idempotencyKey: randomUUID(), lines: ids.map((productId) => ({ productId, quantity: 1 })) },
    });
    await eventually(() => sub.results.length >= 3, { what: "the three pushes" });
    const pushed = sub.results.map((r) => r.data!.inventoryChanged);
    await closeFirst();
    expect(pushed.map((p) => p.id)).toEqual([...ids].sort());
    expect(new Set(pushed.map((p) => p.position)).size).toBe(3);
    const places = pushed.map((p) => decodeRowPosition(p.position));
    expect(places.map((at) => at.id)).toEqual(pushed.map((p) => p.id)); // the projection's row_key
    // One event: the same transaction and position, the id apart.
    expect(new Set(places.map((at) => `${at.txId}:${at.position}`)).size).toBe(1);
    expect(pushed.map((p) => BigInt(p.position))).toEqual(
      pushed.map((p) => BigInt(p.position)).sort((a, b) => (a < b ? -1 : 1)),
    );

    // The connection dropped after the first push: resumed from it, the other two, in the same order.
    const resumed = await subscribed(
      InventoryChangedDocument,
      { productIds: ids, after: pushed[0]!.position },
      "products",
    );
    await eventually(() => resumed.sub.results.length >= 2, { what: "the replay" });
    expect(resumed.sub.results.map((r) => [r.data!.inventoryChanged.id, r.data!.inventoryChanged.position])).toEqual(
      pushed.slice(1).map((p) => [p.id, p.position]),
    );
    await close(resumed);

    // Resumed from the last: nothing of that order again; the next change arrives live, alone.
    const live = await subscribed(
      InventoryChangedDocument,
      { productIds: ids, after: pushed[2]!.position },
      "products",
    );
    await restock(ids[0]!);
    await eventually(() => live.sub.results.length >= 1, { what: "the live push" });
    const pushedLive = live.sub.results.map((r) => r.data!.inventoryChanged);
    expect(pushedLive.map((p) => [p.id, p.available])).toEqual([[ids[0], 10]]);
    await close(live);

    // From a cursor of the earlier form (the event's place alone, as a client may hold across the
    // deploy that added the id): after every row of that order, so only the restock since.
    const earlierForm = (places[0]!.txId * 10n ** 19n + places[0]!.position).toString();
    const fromEarlier = await subscribed(InventoryChangedDocument, { productIds: ids, after: earlierForm }, "products");
    await eventually(() => fromEarlier.sub.results.length >= 1, { what: "the replay" });
    expect(fromEarlier.sub.results.map((r) => r.data!.inventoryChanged)).toEqual(pushedLive);
    await close(fromEarlier);
  });

  it("reads a row's position as the code encodes it, in both read tables, and still takes a cursor of the earlier form", async () => {
    const ids = [
      "00000000-0000-0000-0000-000000000000",
      "ffffffff-ffff-ffff-ffff-ffffffffffff",
      "80000000-0000-0000-8000-000000000001",
      "0fffffff-ffff-fff0-0fff-ffffffffff00",
      ...Array.from({ length: 50 }, () => randomUUID()),
    ];
    const at = { txId: 18_446_744_073_709_551_615n, position: 9_223_372_036_854_775_807n };
    const place = [ids, at.txId.toString(), at.position.toString()];
    // Rows straight into this file's own read tables (with the row_key a projection writes): only their positions matter here.
    await t.db.sql(
      `INSERT INTO "read".products (id, sku, name, price_cents, available, in_stock, units_sold, created_at, updated_at, applied_tx, applied_pos, row_key)
       SELECT id, 'POS-' || id, 'Position', 1, 1, true, 0, now(), now(), $2::text::xid8, $3, "read".row_key(id) FROM unnest($1::uuid[]) AS id`,
      place,
    );
    await t.db.sql(
      `INSERT INTO "read".orders (id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version, applied_tx, applied_pos, row_key)
       SELECT id, 'position', 'PLACED', 1, 1, '[]', now(), now(), 1, $2::text::xid8, $3, "read".row_key(id) FROM unnest($1::uuid[]) AS id`,
      place,
    );
    const stored = await t.db.sql<{ id: string; position: string }>(
      `SELECT id::text AS id, ${rowPositionSql()} AS position FROM "read".products WHERE id = ANY($1::uuid[])
       UNION ALL SELECT id::text, ${rowPositionSql()} FROM "read".orders WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    await t.db.sql(`DELETE FROM "read".products WHERE id = ANY($1::uuid[])`, [ids]);
    await t.db.sql(`DELETE FROM "read".orders WHERE id = ANY($1::uuid[])`, [ids]);
    expect(stored).toHaveLength(2 * ids.length);
    const rows = stored.slice(0, ids.length);
    for (const row of stored) {
      expect(row.position).toBe(encodeRowPosition({ ...at, id: row.id }));
      expect(decodeRowPosition(row.position)).toEqual({ ...at, id: row.id });
    }
    // Ordered as (txId, position, id), the bound of the event after all of its rows.
    const sorted = [...rows].sort((a, b) => (BigInt(a.position) < BigInt(b.position) ? -1 : 1)).map((r) => r.id);
    expect(sorted).toEqual([...ids].sort());
    expect(BigInt(encodeRowPosition(at))).toBeGreaterThan(BigInt(rows.find((r) => r.id === ids[1])!.position));
    // The earlier form, txId · 10^19 + position: after every row of that event.
    expect(decodeRowPosition((at.txId * 10n ** 19n + at.position).toString())).toEqual(at);
    expect(decodeRowPosition("42")).toEqual({ txId: 0n, position: 42n });
  });

  it("ends with BAD_USER_INPUT when more than 1,000 products would be replayed, or the position is not one", async () => {
    // 1,001 rows straight into the read table (this file's own database): only their count matters here.
    await t.db.sql(
      `INSERT INTO "read".products (id, sku, name, price_cents, available, in_stock, units_sold, created_at, updated_at, applied_tx, applied_pos, row_key)
       SELECT id, 'BULK-' || i, 'Bulk ' || i, 1, 1, true, 0, now(), now(), '1'::xid8, i, "read".row_key(id)
         FROM (SELECT i, gen_random_uuid() AS id FROM generate_series(1, 1001) i) AS bulk`,
    );
    const invalid = [
      ...["0", "not-a-position", "-1", "1.5", "9".repeat(61), "1".repeat(81), ""],
      "9".repeat(39), // the earlier form, a transaction id past 64 bits
      ((2n ** 63n + 1n) * 10n ** 39n).toString(), // a position past 63 bits
    ];
    for (const after of invalid) {
      const ws = t.anonymous.ws();
      const sub = collect(ws, InventoryChangedDocument, { after });
      await eventually(() => sub.errors.length > 0 || sub.results.length > 0, { what: "the refusal" });
      const error = (sub.errors[0] as GqlError[] | undefined)?.[0] ?? (sub.results[0]?.errors?.[0] as GqlError);
      expect(error.extensions?.code).toBe("BAD_USER_INPUT");
      await ws.dispose();
    }
    await t.db.sql(`DELETE FROM "read".products WHERE sku LIKE 'BULK-%'`);
  });
});

describe("resuming orderUpdated from a position", () => {
  it("replays the order's current row if it changed after the position, once, then goes live; the owner's only", async () => {
    const product = await createProduct(10);
    const owner = t.customer("resume-owner");
    const placed = await owner.ok(PlaceOrderDocument, {
      input: { idempotencyKey: randomUUID(), lines: [{ productId: product.id, quantity: 1 }] },
    });
    const order = placed.placeOrder.order!;
    await t.admin.ok(PayOrderDocument, { input: { orderId: order.id } });
    await t.admin.ok(ShipOrderDocument, { input: { orderId: order.id } });

    // Resumed from the PLACED row: the SHIPPED row, once.
    const resumed = await subscribed(
      OrderUpdatedDocument,
      { orderId: order.id, after: order.position },
      "orders",
      owner,
    );
    await eventually(() => resumed.sub.results.length >= 1, { what: "the replayed order" });
    expect(resumed.sub.results.map((r) => r.data!.orderUpdated.status)).toEqual(["SHIPPED"]);
    const shipped = resumed.sub.results[0]!.data!.orderUpdated;
    await close(resumed);

    // Resumed from its current position: nothing to replay; the next change arrives live, alone.
    const second = await owner.ok(PlaceOrderDocument, {
      input: { idempotencyKey: randomUUID(), lines: [{ productId: product.id, quantity: 1 }] },
    });
    const current = second.placeOrder.order!;
    const live = await subscribed(
      OrderUpdatedDocument,
      { orderId: current.id, after: current.position },
      "orders",
      owner,
    );
    await t.admin.ok(PayOrderDocument, { input: { orderId: current.id } });
    await eventually(() => live.sub.results.length >= 1, { what: "the live change" });
    expect(live.sub.results.map((r) => r.data!.orderUpdated.status)).toEqual(["PAID"]);
    await close(live);

    // Someone else's order: NOT_FOUND, replay or not.
    const ws = t.customer("resume-other").ws();
    const other = collect(ws, OrderUpdatedDocument, { orderId: order.id, after: "0" });
    await eventually(() => other.errors.length > 0 || other.results.length > 0, { what: "the refusal" });
    const error = (other.errors[0] as GqlError[] | undefined)?.[0] ?? (other.results[0]?.errors?.[0] as GqlError);
    expect(error.extensions?.code).toBe("NOT_FOUND");
    expect(shipped.position).not.toBe(order.position);
    await ws.dispose();
  });
});

const close = (s: { close(): Promise<void> }) => s.close();
