import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { whileOpenElsewhere } from "../support/db";
import { setupFile } from "../support/app";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  PlaceOrderDocument,
  CancelOrderDocument,
  PayOrderDocument,
  ProductsDocument,
  RestockProductDocument,
  ProductDocument,
  ShipOrderDocument,
} from "../../src/storefront/generated/graphql";
import { rebuildProjection, rebuildProjections } from "../../src/projection/rebuild";
import { catalogProjection } from "../../src/projection/projections/catalog.projection";
import { ordersProjection } from "../../src/projection/projections/orders.projection";
import { createLogger } from "../../src/logger";
import { PROJECTION_LEASES } from "../../src/projection/leases";
import type { Sql } from "../../src/db/database";
import type { Statement } from "../../src/db/sql";
import { ProjectionsDocument } from "../../src/storefront/generated/graphql";
import { OperatorCommands } from "../../src/operator/commands";
import { databases } from "../../src/db/open";

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile();
});
afterAll(async () => t?.teardown());

const snapshot = async () => ({
  products: await t.db.sql(
    `SELECT id, sku, name, description, price_cents, available, in_stock, units_sold, created_at, updated_at FROM "read".products ORDER BY id`,
  ),
  orders: await t.db.sql(
    `SELECT id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version FROM "read".orders ORDER BY id`,
  ),
  indexes: await t.db.sql(`SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'read' ORDER BY 1, 2`),
});
const checkpoints = () =>
  t.db.sql(`SELECT name, tx_id::text, position, status, last_error FROM "read".projection_checkpoints ORDER BY name`);
const caughtUp = () =>
  eventually(
    async () =>
      (
        await t.db.sql<{ n: string }>(
          `SELECT count(*)::text AS n FROM "read".projection_checkpoints c JOIN "write".events e ON (e.tx_id, e.position) > (c.tx_id, c.position) WHERE c.name IN ('catalog', 'orders')`,
        )
      )[0]!.n === "0",
    { what: "both projections caught up" },
  );
const logEnd = async () =>
  (await t.db.sql<{ position: string }>(`SELECT max(position)::text AS position FROM "write".events`))[0]!.position;

describe("rebuilding projections from the log", () => {
  it("produces the same rows, keeps serving queries meanwhile, and the projector carries on after the swap", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const { createProduct } = await t.admin.ok(CreateProductDocument, {
        input: { sku: `RB-${i}`, name: `Rebuild ${i}`, priceCents: 100 + i, initialStock: 20 },
      });
      ids.push(createProduct.product!.id);
    }
    await t.admin.ok(RestockProductDocument, { input: { productId: ids[0]!, quantity: 5 } });
    for (let i = 0; i < 10; i++) {
      const { placeOrder } = await t.customer(`rb-${i % 3}`).ok(PlaceOrderDocument, {
        input: {
          idempotencyKey: `rb-${i}`,
          lines: [
            { productId: ids[i % 8]!, quantity: 2 },
            { productId: ids[(i + 3) % 8]!, quantity: 1 },
          ],
        },
      });
      if (i % 4 === 0)
        await t.customer(`rb-${i % 3}`).ok(CancelOrderDocument, { input: { orderId: placeOrder.order!.id } });
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
    const catalog = await rebuildProjection(t.app.db!, catalogProjection, { batchSize: 7, logger });
    const orders = await rebuildProjection(t.app.db!, ordersProjection, { batchSize: 7, logger });
    serving = false;
    await reader;

    expect(catalog.events).toBeGreaterThan(0);
    expect(orders.events).toBe(catalog.events);
    expect(served).toBeGreaterThan(0);
    expect(await snapshot()).toEqual(before);
    const checkpoints = await t.db.sql(`SELECT name, status FROM "read".projection_checkpoints ORDER BY name`);
    expect(checkpoints).toEqual([
      { name: "catalog", status: "RUNNING" },
      { name: "orders", status: "RUNNING" },
    ]);

    // the live projector continues from the moved checkpoint: applied once, not twice
    const { restockProduct } = await t.admin.ok(RestockProductDocument, { input: { productId: ids[1]!, quantity: 3 } });
    expect(restockProduct.product).not.toBeNull();
    const expected = (before.products.find((p) => p.id === ids[1]) as { available: number }).available + 3;
    await eventually(
      async () => (await t.anonymous.ok(ProductDocument, { id: ids[1]! })).product?.available === expected,
      { what: "restock projected" },
    );
  });

  it("rebuilds several projections from one read of the log, side by side, into the same rows as the live projector", async () => {
    // More history on top of the first test's: payments, shipments, a cancellation after payment.
    const { products } = await t.anonymous.ok(ProductsDocument, { first: 8 });
    const ids = products.edges.map((e) => e.node.id);
    for (let i = 0; i < 9; i++) {
      const { placeOrder } = await t.customer(`rb2-${i % 2}`).ok(PlaceOrderDocument, {
        input: { idempotencyKey: `rb2-${i}`, lines: [{ productId: ids[i % ids.length]!, quantity: 1 }] },
      });
      const orderId = placeOrder.order!.id;
      if (i % 3 !== 0) await t.admin.ok(PayOrderDocument, { input: { orderId } });
      if (i % 3 === 1) await t.admin.ok(ShipOrderDocument, { input: { orderId } });
      if (i % 3 === 2) await t.customer(`rb2-${i % 2}`).ok(CancelOrderDocument, { input: { orderId } });
    }
    await caughtUp();
    const before = await snapshot();
    const end = await logEnd();

    const result = await rebuildProjections(t.app.db!, [catalogProjection, ordersProjection], {
      batchSize: 5,
      logger: createLogger("silent"),
    });

    expect(result.events).toBe(
      Number((await t.db.sql<{ n: string }>(`SELECT count(*)::text AS n FROM "write".events`))[0]!.n),
    );
    expect(result.perProjection.map((p) => p.name)).toEqual(["catalog", "orders"]);
    expect(await snapshot()).toEqual(before);
    // Both live checkpoints moved to the end of the log; the rebuild's own checkpoints are gone.
    expect((await checkpoints()).map((c) => [c.name, c.position, c.status])).toEqual([
      ["catalog", end, "RUNNING"],
      ["orders", end, "RUNNING"],
    ]);
    const { restockProduct } = await t.admin.ok(RestockProductDocument, { input: { productId: ids[2]!, quantity: 4 } });
    expect(restockProduct.product).not.toBeNull();
    const expected = (before.products.find((p) => p.id === ids[2]) as { available: number }).available + 4;
    await eventually(
      async () => (await t.anonymous.ok(ProductDocument, { id: ids[2]! })).product?.available === expected,
      { what: "restock projected once" },
    );
  });

  it("leaves every live table and checkpoint as it was when one projection fails, and a rerun starts clean", async () => {
    await caughtUp();
    const before = await snapshot();
    const liveBefore = await checkpoints();
    let batches = 0;
    const failing: typeof ordersProjection = {
      ...ordersProjection,
      project(events, tables) {
        if (++batches === 3) throw new Error("injected failure in the orders projection");
        return ordersProjection.project(events, tables);
      },
    };
    const logger = createLogger("silent");

    await expect(rebuildProjections(t.app.db!, [catalogProjection, failing], { batchSize: 5, logger })).rejects.toThrow(
      /injected failure/,
    );

    expect(await snapshot()).toEqual(before);
    const after = await checkpoints();
    expect(after.filter((c) => !String(c.name).endsWith("@rebuild"))).toEqual(liveBefore);
    // The rebuild's own checkpoints say why it stopped (`npm run projections -- status`).
    expect(
      after.filter((c) => String(c.name).endsWith("@rebuild")).map((c) => [c.name, c.status, String(c.last_error)]),
    ).toEqual([
      ["catalog@rebuild", "FAILED", "injected failure in the orders projection"],
      ["orders@rebuild", "FAILED", "injected failure in the orders projection"],
    ]);

    // A run killed mid-way leaves its copies behind (a failed one drops them): the next run starts over.
    await t.db.sql(`CREATE TABLE "read"."orders__rebuild" (LIKE "read"."orders" INCLUDING ALL)`);
    await t.db.sql(`INSERT INTO "read"."orders__rebuild" SELECT * FROM "read"."orders" LIMIT 1`);
    await t.db.sql(`UPDATE "read"."orders__rebuild" SET total_cents = -1`);
    await rebuildProjections(t.app.db!, [catalogProjection, ordersProjection], {
      batchSize: 5,
      logger,
    });
    expect(await snapshot()).toEqual(before);
    expect((await checkpoints()).map((c) => c.name)).toEqual(["catalog", "orders"]);
  });

  it("never swaps in copies behind the live projection: it fails instead, leaving the live tables and checkpoint as they were", async () => {
    await caughtUp();
    const before = await snapshot();
    // The live catalog as if it had applied more than the rebuild can read (as when the rebuild's
    // horizon was held back by a transaction the live projector reads past).
    const [ahead] = await t.db.sql<{ position: string }>(
      `UPDATE "read".projection_checkpoints SET position = position + 1000000 WHERE name = 'catalog' RETURNING position::text`,
    );
    try {
      await expect(
        rebuildProjections(t.app.db!, [catalogProjection, ordersProjection], {
          batchSize: 5,
          logger: createLogger("silent"),
        }),
      ).rejects.toThrow(/catalog is at .*: run it again/);
      expect(await snapshot()).toEqual(before);
      expect((await checkpoints()).find((c) => c.name === "catalog")).toMatchObject({
        position: ahead!.position,
        status: "RUNNING",
      });
    } finally {
      await t.db.sql(`UPDATE "read".projection_checkpoints SET position = position - 1000000 WHERE name = 'catalog'`);
      await t.db.sql(`DELETE FROM "read".projection_checkpoints WHERE name LIKE '%@rebuild'`);
    }
  });

  it("refuses to rebuild a projection whose rebuild is already running, without touching it", async () => {
    const other = await t.app.db!.openSession();
    try {
      await other.query(`SELECT pg_advisory_lock(${PROJECTION_LEASES}, hashtext('orders@rebuild'))`);
      const before = await checkpoints();
      await expect(
        rebuildProjections(t.app.db!, [catalogProjection, ordersProjection], {
          batchSize: 5,
          logger: createLogger("silent"),
        }),
      ).rejects.toThrow("a rebuild of orders is already running");
      expect(await checkpoints()).toEqual(before);
    } finally {
      await other.close();
    }
    // The catalog's lock was let go with the refused run: it can be rebuilt on its own.
    const catalog = await rebuildProjection(t.app.db!, catalogProjection, {
      batchSize: 5,
      logger: createLogger("silent"),
    });
    expect(catalog.events).toBeGreaterThan(0);
  });

  it("reads past a transaction left open in another database of the server, which cannot write this log", async () => {
    await whileOpenElsewhere(async () => {
      await t.admin.ok(CreateProductDocument, {
        input: { sku: "RB-ELSEWHERE", name: "Rebuilt past elsewhere", priceCents: 100, initialStock: 4 },
      });
      const [log] = await t.db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM "write".events`);
      const result = await rebuildProjection(t.app.db!, catalogProjection, {
        batchSize: 50,
        logger: createLogger("silent"),
      });
      expect(result.events).toBe(log!.n);
      const [row] = await t.db.sql<{ available: number }>(
        `SELECT available FROM "read".products WHERE sku = 'RB-ELSEWHERE'`,
      );
      expect(row?.available).toBe(4);
    });
  });

  it("holds the lease of what it rebuilds: the projections query names the rebuild as its leader", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let entered = false;
    // A catalog whose first batch waits: the rebuild is caught in the middle.
    const slowCatalog: typeof catalogProjection = {
      ...catalogProjection,
      project(events, tables) {
        entered = true;
        return catalogProjection.project(events, tables);
      },
    };
    const rebuilding = rebuildProjection(t.app.db!, slowCatalog, {
      batchSize: 5,
      logger: createLogger("silent"),
      instanceId: "rebuild-cli-test",
      // the event log, read only once the test has seen the rebuild's lease
      log: {
        ...t.app.db!,
        sql: {
          query: async (statement: Statement<unknown>) => {
            await released;
            return t.app.db!.sql.query(statement);
          },
        } as Sql,
      },
    });
    try {
      const leader = await eventually(
        async () => {
          const { projections } = await t.admin.ok(ProjectionsDocument, {});
          return projections.find((p) => p.name === "catalog@rebuild" && p.leader === "rebuild-cli-test");
        },
        { what: "the rebuild to show as the leader of catalog@rebuild" },
      );
      expect(leader).toMatchObject({ status: "REBUILDING" });
      expect(entered).toBe(false);
      // the live projection keeps its own leader meanwhile
      const { projections } = await t.admin.ok(ProjectionsDocument, {});
      expect(projections.find((p) => p.name === "catalog")?.leader).toBe(t.app.config.instanceId);
    } finally {
      release();
    }
    expect((await rebuilding).events).toBeGreaterThan(0);
    const { projections } = await t.admin.ok(ProjectionsDocument, {});
    expect(projections.map((p) => p.name)).toEqual(["catalog", "orders"]);
  });

  it("runs the operator commands a server runs for the CLIs one at a time: another meanwhile is refused with CONFLICT", async () => {
    const operator = new OperatorCommands(databases(t.app.db!), { batchSize: 5, logger: createLogger("silent") });
    const rebuilding = operator.rebuild(["catalog", "orders"]);
    await expect(operator.verify(0)).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(operator.retry("orders")).rejects.toMatchObject({ code: "CONFLICT" });
    expect((await rebuilding).report).toMatch(/^rebuilt catalog, orders: \d+ events/);
    // what was refused left nothing behind: the next runs
    const verified = await operator.verify(10_000);
    expect(verified.report).toMatch(/^verify: OK/);
    expect(verified.ok).toBe(true);
    await expect(operator.rebuild(["nope"])).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });
});
