import { randomUUID } from "node:crypto";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgres } from "../../src/db/postgres";
import { verify } from "../../src/verify/verify";
import { startTestApp, type TestApp } from "../support/app";
import { collect } from "../support/client";
import { freshDatabase, type TestDatabase } from "../support/db";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  PlaceOrderDocument,
  ProductDocument,
  ProjectionsDocument,
  RelayDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";

// DATABASE_URL and READ_DATABASE_URL naming two databases: commands and the event log in one,
// the read tables, checkpoints and read_changed in the other; the projector reads the first and
// writes the second.

let writeDb: TestDatabase;
let readDb: TestDatabase;
let t: TestApp;
const sockets: Client[] = [];

beforeAll(async () => {
  // empty: the app migrates each with its own side's part
  [writeDb, readDb] = await Promise.all([freshDatabase({ empty: true }), freshDatabase({ empty: true })]);
  t = await startTestApp(writeDb, { readDatabaseUrl: readDb.url, projectorPollMs: 100 });
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.dispose()));
  await t?.stop();
  await Promise.all([writeDb?.drop(), readDb?.drop()]);
});

const count = async (db: TestDatabase, table: string) =>
  (await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;

async function createProduct(stock: number) {
  const sku = `RD-${randomUUID().slice(0, 8)}`;
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 250, initialStock: stock },
  });
  return createProduct;
}

describe("a read database of its own (READ_DATABASE_URL)", () => {
  it("answers a mutation with its own write, read back from the read database", async () => {
    const created = await createProduct(5);
    expect(created.product).toMatchObject({ available: 5 });
    const { placeOrder } = await t.customer("rd-buyer").ok(PlaceOrderDocument, {
      input: { idempotencyKey: randomUUID(), lines: [{ productId: created.product!.id, quantity: 2 }] },
    });
    expect(placeOrder.order).toMatchObject({ status: "PLACED", itemCount: 2 });
    // The order's read-back waited for the orders projection; the catalog follows on its own.
    const product = await eventually(
      async () => {
        const { product } = await t.anonymous.ok(ProductDocument, { id: created.product!.id });
        return product?.unitsSold === 2 && product;
      },
      { what: "the catalog to apply the order" },
    );
    expect(product).toMatchObject({ available: 3, unitsSold: 2 });
  });

  it("keeps each side's tables and rows in its own database", async () => {
    expect(await count(writeDb, `"write"."events"`)).toBeGreaterThan(0);
    expect(await count(writeDb, `"write"."orders"`)).toBeGreaterThan(0);
    expect(await count(readDb, `"read"."products"`)).toBeGreaterThan(0);
    expect(await count(readDb, `"read"."orders"`)).toBeGreaterThan(0);
    expect(await count(readDb, `"read"."projection_checkpoints"`)).toBeGreaterThan(0);

    const schemas = async (db: TestDatabase) =>
      (await db.sql<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname IN ('write', 'read')`)).map(
        (r) => r.nspname,
      );
    expect(await schemas(writeDb)).toEqual(["write"]);
    expect(await schemas(readDb)).toEqual(["read"]);
  });

  it("pushes changes to subscribers from the read database", async () => {
    const created = await createProduct(1);
    const socket = t.anonymous.ws();
    sockets.push(socket);
    const inventory = collect(socket, InventoryChangedDocument, { productIds: [created.product!.id] });
    await eventually(() => t.app.services.feed.subscriberCount === 1, { what: "the subscription" });
    await t.admin.ok(RestockProductDocument, { input: { productId: created.product!.id, quantity: 4 } });
    await eventually(() => inventory.results.some((r) => r.data?.inventoryChanged.available === 5), {
      what: "the restock pushed",
    });
    inventory.unsubscribe();
  });

  it("reports each projection's lag as its leader measured it against the write database's log", async () => {
    const before = Date.now();
    await createProduct(2);
    await eventually(
      async () => {
        const { projections } = await t.admin.ok(ProjectionsDocument);
        return (
          projections.length === 2 &&
          projections.every(
            (p) =>
              p.lagEvents === 0 &&
              p.lagSeconds === 0 &&
              p.leader === t.app.config.instanceId &&
              Date.parse(p.lagMeasuredAt!) > before,
          )
        );
      },
      { what: "both projections measured caught up" },
    );
    // no event stream here: no relay status
    expect((await t.admin.ok(RelayDocument, {})).relay).toBeNull();
    // the figures live in the read database, where the query side reads them
    const measured = await readDb.sql<{ name: string; measured_by: string }>(
      `SELECT name, measured_by FROM "read"."projection_lag" ORDER BY name`,
    );
    expect(measured).toEqual([
      { name: "catalog", measured_by: t.app.config.instanceId },
      { name: "orders", measured_by: t.app.config.instanceId },
    ]);
  });

  it("verifies the read database against the write database, and finds a read row that disagrees", async () => {
    const write = openPostgres(writeDb.url, 2);
    const read = openPostgres(readDb.url, 2);
    try {
      const agreed = await verify(write, { waitMs: 10_000 }, read);
      expect(agreed.problems).toEqual([]);
      expect(agreed.ok).toBe(true);

      const [product] = await readDb.sql<{ id: string }>(`SELECT id::text AS id FROM "read"."products" LIMIT 1`);
      await readDb.sql(`UPDATE "read"."products" SET available = available + 100 WHERE id = $1`, [product!.id]);
      const broken = await verify(write, { waitMs: 0 }, read);
      expect(broken.ok).toBe(false);
      expect(broken.problems.join("\n")).toContain(product!.id);
    } finally {
      await Promise.all([write.close(), read.close()]);
    }
  });
});
