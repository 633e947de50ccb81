import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type App } from "../../src/app";
import { testConfig } from "../support/app";
import { collect, GraphQLClient, token } from "../support/client";
import { eventually } from "../support/wait";
import {
  CancelOrderDocument,
  CreateProductDocument,
  InventoryChangedDocument,
  MyOrdersDocument,
  OrderDocument,
  PlaceOrderDocument,
  ProductDocument,
  ProductsDocument,
  ProjectionsDocument,
} from "../../src/storefront/generated/graphql";

// The zero-setup path: no DATABASE_URL, so the app runs on the embedded Postgres (PGlite) in a
// folder. Creating a fresh folder runs initdb (seconds), hence the generous timeouts.
const SLOW = 60_000;

let dir: string;
let app: App | undefined;
let anonymous: GraphQLClient;
let admin: GraphQLClient;

async function start(): Promise<void> {
  app = await startApp(testConfig(undefined, { dataDir: join(dir, "pglite") }));
  anonymous = new GraphQLClient(`http://127.0.0.1:${app.port}`);
  admin = anonymous.as(token("admin", "ops"));
}

async function stop(): Promise<void> {
  const running = app;
  app = undefined;
  await running?.stop();
}

const customer = (id: string) => anonymous.as(token("customer", id));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "embedded-e2e-"));
  await start();
}, SLOW);

afterAll(async () => {
  await stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, SLOW);

describe("running without DATABASE_URL (embedded Postgres)", () => {
  let productId: string;
  let orderId: string;

  it("stores its data in the configured folder", () => {
    expect(app!.db!.kind).toBe("embedded");
    expect(app!.db!.location).toBe(join(dir, "pglite"));
  });

  it("leads every projection itself, and the projections query names it", async () => {
    const id = app!.config.instanceId;
    await eventually(
      async () => {
        const { projections } = await admin.ok(ProjectionsDocument);
        return projections.length > 0 && projections.every((p) => p.leader === id);
      },
      { what: `every projection led by ${id}` },
    );
  });

  it(
    "creates a product, places and cancels an order, and pushes each stock change to a subscriber",
    async () => {
      const created = await admin.ok(CreateProductDocument, {
        input: {
          sku: "EMB-MUG-01",
          name: "Enamel mug",
          description: "350 ml, white",
          priceCents: 1450,
          initialStock: 5,
        },
      });
      expect(created.createProduct.product).toMatchObject({ sku: "EMB-MUG-01", available: 5, inStock: true });
      productId = created.createProduct.product!.id;

      const read = await anonymous.ok(ProductDocument, { id: productId });
      expect(read.product).toMatchObject({ name: "Enamel mug", priceCents: 1450, available: 5, unitsSold: 0 });
      // A search, by name and by sku, any case (its key stored with the row; no trigram index here).
      for (const search of ["ENAMEL", "mel m", "emb-mug"]) {
        const found = await anonymous.ok(ProductsDocument, { filter: { search } });
        expect(found.products.edges.map((e) => e.node.id)).toEqual([productId]);
      }
      expect((await anonymous.ok(ProductsDocument, { filter: { search: "mug\nemb" } })).products.totalCount).toBe(0);

      const ws = anonymous.ws();
      try {
        const sub = collect(ws, InventoryChangedDocument, { productIds: [productId] });
        // Changes are pushed only to subscriptions the server has registered: wait for it.
        await eventually(() => app!.services.feed.subscriberCount === 1, { what: "the subscription to be registered" });

        const buyer = customer("emb-buyer");
        const placed = await buyer.ok(PlaceOrderDocument, {
          input: { idempotencyKey: "emb-1", lines: [{ productId, quantity: 2 }] },
        });
        const order = placed.placeOrder.order;
        expect(order).toMatchObject({ status: "PLACED", customerId: "emb-buyer", totalCents: 2900, itemCount: 2 });
        expect(order!.lines).toEqual([
          { productId, sku: "EMB-MUG-01", name: "Enamel mug", quantity: 2, unitPriceCents: 1450 },
        ]);
        orderId = order!.id;

        const availableSeen = () => sub.results.map((r) => r.data?.inventoryChanged.available);
        await eventually(() => availableSeen().includes(3), { what: "the subscriber to see 3 available" });

        const cancelled = await buyer.ok(CancelOrderDocument, { input: { orderId } });
        expect(cancelled.cancelOrder.order?.status).toBe("CANCELLED");
        await eventually(() => availableSeen().lastIndexOf(5) > availableSeen().indexOf(3), {
          what: "the subscriber to see 5 available again",
        });
        expect(sub.errors).toEqual([]);
        sub.unsubscribe();
      } finally {
        await ws.dispose();
      }

      expect((await anonymous.ok(ProductDocument, { id: productId })).product?.available).toBe(5);
      const mine = await customer("emb-buyer").ok(MyOrdersDocument, {});
      expect(mine.myOrders.totalCount).toBe(1);
      expect(mine.myOrders.edges[0]?.node).toMatchObject({ id: orderId, status: "CANCELLED" });
    },
    SLOW,
  );

  it(
    "keeps the product and the order after a restart on the same folder",
    async () => {
      await stop();
      await start();
      expect((await anonymous.ok(ProductDocument, { sku: "EMB-MUG-01" })).product).toMatchObject({
        id: productId,
        available: 5,
        unitsSold: 0,
      });
      expect((await admin.ok(OrderDocument, { id: orderId })).order).toMatchObject({
        customerId: "emb-buyer",
        status: "CANCELLED",
      });
      // and it still takes writes
      const again = await customer("emb-buyer").ok(PlaceOrderDocument, {
        input: { idempotencyKey: "emb-2", lines: [{ productId, quantity: 1 }] },
      });
      expect(again.placeOrder.order?.status).toBe("PLACED");
    },
    SLOW,
  );

  it(
    "accepts exactly 3 of 10 concurrent one-unit orders when 3 are in stock",
    async () => {
      const created = await admin.ok(CreateProductDocument, {
        input: { sku: "EMB-LAMP-01", name: "Desk lamp", priceCents: 3900, initialStock: 3 },
      });
      const lamp = created.createProduct.product!.id;
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          customer(`emb-rush-${i}`).request(PlaceOrderDocument, {
            input: { idempotencyKey: `rush-${i}`, lines: [{ productId: lamp, quantity: 1 }] },
          }),
        ),
      );
      const accepted = results.filter((r) => r.data?.placeOrder);
      const codes = results.filter((r) => !r.data?.placeOrder).map((r) => r.errors?.[0]?.extensions?.code);
      expect(accepted).toHaveLength(3);
      expect(codes).toEqual(Array(7).fill("OUT_OF_STOCK"));
      await eventually(async () => (await anonymous.ok(ProductDocument, { id: lamp })).product?.unitsSold === 3, {
        what: "the catalog to show 3 sold",
      });
      expect((await anonymous.ok(ProductDocument, { id: lamp })).product).toMatchObject({
        available: 0,
        inStock: false,
      });
    },
    SLOW,
  );
});
