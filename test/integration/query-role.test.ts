import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database";
import { openPostgres } from "../../src/db/postgres";
import { createLogger } from "../../src/logger";
import { CatalogQueries } from "../../src/query/catalog.queries";
import { OrderQueries } from "../../src/query/orders.queries";
import { ProjectionQueries } from "../../src/query/projections.queries";
import { ChangeFeed } from "../../src/realtime/changeFeed";
import { setupFile, type TestApp } from "../support/app";
import type { TestDatabase } from "../support/db";
import { ADMIN_URL } from "../support/globalSetup";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  PlaceOrderDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";

// The query side needs no more than a role that may read schema "read" (and LISTEN): queries,
// subscriptions' change feed and the projection status all work through such a role, and it
// can neither read the write side nor write anything.

const ROLE = `shop_query_${randomBytes(4).toString("hex")}`;
let t: TestApp & { db: TestDatabase; teardown(): Promise<void> };
let asQueryRole: Database;

async function asAdmin(sql: string, database?: string): Promise<void> {
  const url = new URL(ADMIN_URL);
  if (database) url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  t = await setupFile();
  await asAdmin(`CREATE ROLE "${ROLE}" LOGIN`);
  await asAdmin(
    `GRANT USAGE ON SCHEMA "read" TO "${ROLE}"; GRANT SELECT ON ALL TABLES IN SCHEMA "read" TO "${ROLE}"`,
    t.db.name,
  );
  const url = new URL(t.db.url);
  url.username = ROLE;
  asQueryRole = openPostgres(url.toString(), 2);
});

afterAll(async () => {
  await asQueryRole?.close();
  if (t) await asAdmin(`DROP OWNED BY "${ROLE}"`, t.db.name).catch(() => undefined);
  await t?.teardown();
  await asAdmin(`DROP ROLE IF EXISTS "${ROLE}"`);
});

async function productAndOrder() {
  const sku = `ROLE-${randomUUID().slice(0, 8)}`;
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Role ${sku}`, priceCents: 300, initialStock: 9 },
  });
  const { placeOrder } = await t.customer("role-buyer").ok(PlaceOrderDocument, {
    input: { idempotencyKey: randomUUID(), lines: [{ productId: createProduct.product!.id, quantity: 2 }] },
  });
  return { product: createProduct.product!, order: placeOrder.order!, sku };
}

describe("a database role that may only read schema read", () => {
  it("serves the catalog and the orders", async () => {
    const { product, order, sku } = await productAndOrder();
    const catalog = new CatalogQueries(asQueryRole);
    const orders = new OrderQueries(asQueryRole);
    expect(await catalog.byId(product.id)).toMatchObject({ sku, available: 7, unitsSold: 2 });
    expect(await catalog.bySku(sku)).toMatchObject({ id: product.id });
    expect((await catalog.list({ search: sku }, 20, null)).rows).toHaveLength(1);
    expect(await orders.byId(order.id)).toMatchObject({ status: "PLACED", itemCount: 2 });
    expect((await orders.list({ customerId: "role-buyer" }, 20, null)).rows.map((o) => o.id)).toContain(order.id);
  });

  it("hears read_changed and loads the changed rows for subscribers", async () => {
    const { product } = await productAndOrder();
    const feed = new ChangeFeed(
      asQueryRole,
      new CatalogQueries(asQueryRole),
      new OrderQueries(asQueryRole),
      createLogger("silent"),
    );
    await feed.start();
    try {
      const pushed = feed.products.subscribe([product.id]);
      const next = pushed.next();
      await t.admin.ok(RestockProductDocument, { input: { productId: product.id, quantity: 3 } });
      expect((await next).value).toMatchObject({ id: product.id, available: 10 });
      await pushed.return?.();
    } finally {
      await feed.stop();
    }
  });

  it("shows the projections' status and lag, as the projector measured it, and their leader", async () => {
    const status = new ProjectionQueries(asQueryRole.prisma);
    await eventually(
      async () =>
        (await status.statuses()).every(
          (s) => s.status === "RUNNING" && s.lagEvents === 0 && s.lagMeasuredAt !== null && s.leader !== null,
        ),
      { what: "the projections caught up, seen through the role" },
    );
  });

  it("can neither read the write side nor write anything", async () => {
    const denied = async (text: string) => {
      const error = await asQueryRole.sql.query(text).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as { code?: string })?.code, text).toBe("42501");
    };
    await denied(`SELECT count(*) FROM "write"."events"`);
    await denied(`SELECT count(*) FROM "write"."orders"`);
    await denied(`UPDATE "read"."products" SET available = 0`);
    await denied(`DELETE FROM "read"."orders"`);
    await denied(`UPDATE "read"."projection_checkpoints" SET status = 'FAILED'`);
  });
});
