import { randomUUID } from "node:crypto";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../support/app";
import { collect } from "../support/client";
import { freshDatabase, type TestDatabase } from "../support/db";
import { startPrimary, stopAll, type PgPrimary, type PgReplica } from "../support/pgCluster";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  MyOrdersDocument,
  PlaceOrderDocument,
  ProductDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";

// The read database on a Postgres server of its own, made by the test in a temporary folder,
// with a real streaming replica of it (pg_basebackup -R); the write database on the machine's
// server. READ_REPLICA_URLS names the replica.

let writeDb: TestDatabase;
let primary: PgPrimary;
let replica: PgReplica;
let t: TestApp;
const sockets: Client[] = [];

beforeAll(async () => {
  [writeDb, primary] = await Promise.all([freshDatabase({ empty: true }), startPrimary()]);
  await primary.sql(`CREATE DATABASE shop`);
  replica = await primary.addReplica();
  t = await startTestApp(writeDb, {
    readDatabaseUrl: primary.url("shop"),
    readReplicaUrls: [replica.url("shop")],
    readReplicaPollMs: 50,
    // Where each query is read is what these tests count: no catalog result cache in between
    // (its own test, at the end, starts an instance with one).
    catalogResultCacheEntries: 0,
  });
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.dispose()));
  await t?.stop();
  await writeDb?.drop();
  await stopAll();
});

/** The /metrics samples whose name and labels start with `prefix`, summed. */
async function metric(prefix: string, where: (line: string) => boolean = () => true): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(prefix) && where(line))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}
const replicaReads = () => metric("shop_read_queries_total{", (l) => !l.includes('target="primary"'));
const primaryReads = () => metric('shop_read_queries_total{target="primary"}');
const replicaGauge = (name: string) => metric(`shop_read_replica_${name}{`);

async function createProduct(stock: number) {
  const sku = `RR-${randomUUID().slice(0, 8)}`;
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 400, initialStock: stock },
  });
  expect(createProduct.product).toMatchObject({ sku, available: stock });
  return createProduct.product!;
}

describe("a streaming replica of the read database (READ_REPLICA_URLS)", () => {
  it("answers queries from the replica once it has replayed far enough", async () => {
    expect(await replica.sql<{ standby: boolean }>(`SELECT pg_is_in_recovery() AS standby`)).toEqual([
      { standby: true },
    ]);
    const product = await createProduct(5);
    await eventually(async () => (await replicaGauge("serving")) === 1, { what: "the replica to serve" });

    const before = await replicaReads();
    const answered = await eventually(
      async () => {
        const { product: row } = await t.anonymous.ok(ProductDocument, { id: product.id });
        return row?.available === 5 && (await replicaReads()) > before && row;
      },
      { what: "a query answered by the replica" },
    );
    expect(answered).toMatchObject({ id: product.id, available: 5 });
    expect(await replicaGauge("up")).toBe(1);
  });

  it("with the replica's replay paused: the read-back, the writer's next query and the pushes come from the primary, and the replica counts as lagging", async () => {
    const product = await createProduct(10);
    await eventually(async () => (await replicaGauge("serving")) === 1, { what: "the replica to serve" });
    const socket = t.anonymous.ws();
    sockets.push(socket);
    const pushed = collect(socket, InventoryChangedDocument, { productIds: [product.id] });
    await replica.pauseReplay();
    try {
      const { restockProduct } = await t.admin.ok(RestockProductDocument, {
        input: { productId: product.id, quantity: 5 },
      });
      expect(restockProduct.product).toMatchObject({ id: product.id, available: 15 });

      const buyer = t.customer(`rr-buyer-${randomUUID().slice(0, 8)}`);
      const { placeOrder } = await buyer.ok(PlaceOrderDocument, {
        input: { idempotencyKey: randomUUID(), lines: [{ productId: product.id, quantity: 3 }] },
      });
      expect(placeOrder.order).toMatchObject({ status: "PLACED", itemCount: 3 });
      // The buyer's own query right after: its order is there, though the replica has not replayed it.
      const primaryBefore = await primaryReads();
      const { myOrders } = await buyer.ok(MyOrdersDocument, { first: 5 });
      expect(myOrders.edges.map((e) => e.node.id)).toEqual([placeOrder.order!.id]);
      expect(await primaryReads()).toBeGreaterThan(primaryBefore);
      expect(await replica.sql(`SELECT 1 FROM "read"."orders" WHERE id = $1`, [placeOrder.order!.id], "shop")).toEqual(
        [],
      );

      // Subscribers hear read_changed from the primary and get the rows from there.
      await eventually(() => pushed.results.some((r) => r.data?.inventoryChanged.available === 12), {
        what: "the pushed inventory change",
      });

      // Lagging, in bytes and seconds, and out of service; anyone's queries go to the primary.
      await eventually(
        async () =>
          (await replicaGauge("serving")) === 0 &&
          (await replicaGauge("lag_bytes")) > 0 &&
          (await replicaGauge("lag_seconds")) > 0,
        { what: "the replica to count as lagging" },
      );
      const { product: row } = await t.anonymous.ok(ProductDocument, { id: product.id });
      expect(row).toMatchObject({ available: 12, unitsSold: 3 });
    } finally {
      await replica.resumeReplay();
    }
    await eventually(async () => (await replicaGauge("serving")) === 1 && (await replicaGauge("lag_bytes")) === 0, {
      what: "the replica to catch up and serve again",
    });
    const before = await replicaReads();
    const { product: row } = await t.anonymous.ok(ProductDocument, { id: product.id });
    expect(row).toMatchObject({ available: 12, unitsSold: 3 });
    expect(await replicaReads()).toBeGreaterThan(before);
    pushed.unsubscribe();
  });

  it("skips a replica that is down, and uses it again once it is back", async () => {
    const product = await createProduct(4);
    await eventually(async () => (await replicaGauge("serving")) === 1, { what: "the replica to serve" });
    await replica.stop();
    try {
      // Answered at once, whether the router has noticed yet or not (a failed read goes to the primary).
      const { product: row } = await t.anonymous.ok(ProductDocument, { id: product.id });
      expect(row).toMatchObject({ available: 4 });
      await eventually(async () => (await replicaGauge("up")) === 0, { what: "the replica to be out" });
      const primaryBefore = await primaryReads();
      expect((await t.anonymous.ok(ProductDocument, { id: product.id })).product).toMatchObject({ available: 4 });
      expect(await primaryReads()).toBeGreaterThan(primaryBefore);
    } finally {
      await replica.start();
    }
    await eventually(async () => (await replicaGauge("serving")) === 1, {
      timeoutMs: 15_000,
      what: "the replica back in service",
    });
    const before = await replicaReads();
    expect((await t.anonymous.ok(ProductDocument, { id: product.id })).product).toMatchObject({ available: 4 });
    expect(await replicaReads()).toBeGreaterThan(before);
  });

  it("with a result cache: keeps no row read from a replica that may lack the last change", async () => {
    // Slow looks: the replica goes on serving for a while after it stopped replaying.
    const cached = await startTestApp(writeDb, {
      readDatabaseUrl: primary.url("shop"),
      readReplicaUrls: [replica.url("shop")],
      readReplicaPollMs: 1000,
      runProjector: false,
    });
    try {
      const product = await createProduct(6);
      const read = async () => (await cached.anonymous.ok(ProductDocument, { id: product.id })).product;
      const serving = async () =>
        (await (await fetch(`${cached.url}/metrics`)).text())
          .split("\n")
          .some((l) => l.startsWith("shop_read_replica_serving{") && l.endsWith(" 1"));
      await eventually(serving, { timeoutMs: 10_000, what: "the replica to serve the cached instance" });
      await eventually(async () => (await read())?.available === 6, { what: "the product on the cached instance" });
      await replica.pauseReplay();
      try {
        // Through the other instance: this one hears of it only from read_changed.
        const { restockProduct } = await t.admin.ok(RestockProductDocument, {
          input: { productId: product.id, quantity: 1 },
        });
        expect(restockProduct.product).toMatchObject({ available: 7 });
        // Anyone but the writer reads the replica's older row while it still serves: that row
        // must not be kept once the replica has caught up.
        await eventually(async () => (await read())?.available === 6, { what: "the replica's older row" });
      } finally {
        await replica.resumeReplay();
      }
      await eventually(
        async () =>
          (
            await replica.sql<{ available: number }>(
              `SELECT available FROM "read"."products" WHERE id = $1`,
              [product.id],
              "shop",
            )
          )[0]?.available === 7,
        { what: "the replica to replay the restock" },
      );
      await eventually(async () => (await read())?.available === 7, { what: "the restock on the cached instance" });
      expect((await read())?.available).toBe(7);
    } finally {
      await cached.stop();
    }
  });
});
