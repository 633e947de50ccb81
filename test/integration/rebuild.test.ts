import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupFile } from "../support/app";
import { eventually } from "../support/wait";
import { CreateProductDocument, PlaceOrderDocument, CancelOrderDocument, ProductsDocument, RestockProductDocument, ProductDocument } from "../generated/graphql";
import { rebuildProjection } from "../../src/read/rebuild";
import { catalogProjection } from "../../src/read/projections/catalog.projection";
import { ordersProjection } from "../../src/read/projections/orders.projection";
import { createLogger } from "../../src/logger";

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile();
});
afterAll(async () => t?.teardown());

const snapshot = async () => ({
  products: await t.db.sql(`SELECT id, sku, name, description, price_cents, available, in_stock, units_sold, created_at, updated_at FROM "read".products ORDER BY id`),
  orders: await t.db.sql(`SELECT id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version FROM "read".orders ORDER BY id`),
  indexes: await t.db.sql(`SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'read' ORDER BY 1, 2`),
});

describe("rebuilding projections from the log", () => {
  it("produces the same rows, keeps serving queries meanwhile, and the projector carries on after the swap", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const { createProduct } = await t.admin.ok(CreateProductDocument, { input: { sku: `RB-${i}`, name: `Rebuild ${i}`, priceCents: 100 + i, initialStock: 20 } });
      ids.push(createProduct.product!.id);
    }
    await t.admin.ok(RestockProductDocument, { input: { productId: ids[0]!, quantity: 5 } });
    for (let i = 0; i < 10; i++) {
      const { placeOrder } = await t.customer(`rb-${i % 3}`).ok(PlaceOrderDocument, {
        input: { idempotencyKey: `rb-${i}`, lines: [{ productId: ids[i % 8]!, quantity: 2 }, { productId: ids[(i + 3) % 8]!, quantity: 1 }] },
      });
      if (i % 4 === 0) await t.customer(`rb-${i % 3}`).ok(CancelOrderDocument, { input: { orderId: placeOrder.order!.id } });
    }
    const before = await snapshot();

    let serving = true;
    let served = 0;
    const reader = (async () => {
      while (serving) {
        const res = await t.anonymous.request(ProductsDocument, { first: 20 });
        expect(res.errors).toBeUndefined();
        expect(res.data!.products.totalCount).toBe(8);
        served += 1;
      }
    })();
    const logger = createLogger("silent");
    const catalog = await rebuildProjection(t.app.db, catalogProjection, { batchSize: 7, logger });
    const orders = await rebuildProjection(t.app.db, ordersProjection, { batchSize: 7, logger });
    serving = false;
    await reader;

    expect(catalog.events).toBeGreaterThan(0);
    expect(orders.events).toBe(catalog.events);
    expect(served).toBeGreaterThan(0);
    expect(await snapshot()).toEqual(before);
    const checkpoints = await t.db.sql(`SELECT name, status FROM "read".projection_checkpoints ORDER BY name`);
    expect(checkpoints).toEqual([{ name: "catalog", status: "RUNNING" }, { name: "orders", status: "RUNNING" }]);

    // the live projector continues from the moved checkpoint: applied once, not twice
    const { restockProduct } = await t.admin.ok(RestockProductDocument, { input: { productId: ids[1]!, quantity: 3 } });
    expect(restockProduct.product).not.toBeNull();
    const expected = (before.products.find((p) => p.id === ids[1]) as { available: number }).available + 3;
    await eventually(async () => (await t.anonymous.ok(ProductDocument, { id: ids[1]! })).product?.available === expected, { what: "restock projected" });
  });
});
