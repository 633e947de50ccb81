import { randomUUID } from "node:crypto";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../support/app";
import { collect } from "../support/client";
import { freshDatabase, type TestDatabase } from "../support/db";
import { PROJECTION_LEASES } from "../../src/projection/leases";
import { allProjections } from "../../src/projection/projections";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  OrderUpdatedDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  ProductDocument,
  ProjectionsDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";

// Several API instances on one database: the projections' leases shared between them (an
// advisory lock per projection), every instance's subscribers fed through NOTIFY read_changed.

const CONFIG = { projectorPollMs: 200 };
let started = 0;

let db: TestDatabase;
const instances: TestApp[] = [];
const sockets: Client[] = [];

async function startInstance(): Promise<TestApp> {
  const instance = await startTestApp(db, { ...CONFIG, instanceId: `instance-${++started}` });
  instances.push(instance);
  return instance;
}

async function stopInstance(instance: TestApp): Promise<void> {
  await instance.stop();
  instances.splice(instances.indexOf(instance), 1);
}

beforeAll(async () => {
  db = await freshDatabase();
  await startInstance();
  await startInstance();
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.dispose()));
  await Promise.all(instances.map((i) => i.stop()));
  await db?.drop();
});

const leaders = () => instances.filter((i) => i.app.projector?.isLeader);

/** The projection leases held in this database: which session holds which. */
async function leases(): Promise<{ pid: number; instance: string }[]> {
  return db.sql<{ pid: number; instance: string }>(
    `SELECT l.pid, a.application_name AS instance
       FROM pg_locks l JOIN pg_database d ON d.oid = l.database JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()
        AND l.classid = $1::int::oid AND l.objsubid = 2`,
    [PROJECTION_LEASES],
  );
}

/** The leader of each projection, as the projections query shows it. */
async function leadersShown(via: TestApp): Promise<(string | null)[]> {
  const { projections } = await via.admin.ok(ProjectionsDocument);
  return projections.map((p) => p.leader);
}

/** Waits until every projection is led by one of the running instances, each leading its share. */
async function shared(timeoutMs = 5000): Promise<void> {
  await eventually(
    async () => {
      const held = await leases();
      const running = instances.map((i) => i.app.config.instanceId);
      const perInstance = running.map((id) => held.filter((h) => h.instance === id).length);
      return (
        held.length === allProjections.length &&
        held.every((h) => running.includes(h.instance)) &&
        perInstance.every(
          (n) =>
            n === Math.ceil(allProjections.length / running.length) ||
            n === Math.floor(allProjections.length / running.length),
        )
      );
    },
    { timeoutMs, what: "the projections shared among the running instances" },
  );
}

async function createProduct(via: TestApp, stock: number) {
  const sku = `SKU-${randomUUID().slice(0, 8)}`;
  const { createProduct } = await via.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 100, initialStock: stock },
  });
  return createProduct.product!;
}

function watchInventory(on: TestApp, productId: string) {
  const socket = on.anonymous.ws();
  sockets.push(socket);
  return collect(socket, InventoryChangedDocument, { productIds: [productId] });
}

const subscribers = (on: TestApp) => on.app.services.feed.subscriberCount;

/** Waits until the subscriptions this test opened on an instance are registered there. */
async function subscribed(on: TestApp, count: number): Promise<void> {
  await eventually(() => subscribers(on) === count, { what: `${count} subscriptions on the instance` });
}

// Every test starts with no subscriptions left on any instance (unsubscribing is asynchronous).
beforeEach(async () => {
  await eventually(() => instances.every((i) => subscribers(i) === 0), { what: "earlier subscriptions to close" });
});

const pushedAvailable = (sub: ReturnType<typeof watchInventory>) =>
  sub.results.map((r) => r.data?.inventoryChanged.available);

describe("two API instances on one database", () => {
  it("shares the projections: each instance leads one, and the projections query names it", async () => {
    expect(instances).toHaveLength(2);
    await shared();
    await eventually(() => leaders().length === 2, { what: "both instances to report that they lead" });
    const held = await leases();
    expect(new Set(held.map((h) => h.pid)).size).toBe(2);
    expect((await leadersShown(instances[0]!)).sort()).toEqual(["instance-1", "instance-2"]);
  });

  it("pushes a restock and an order change made through one instance to subscribers of the other", async () => {
    const [a, b] = instances as [TestApp, TestApp];
    const product = await createProduct(a, 10);
    const { placeOrder } = await a.customer("multi-buyer").ok(PlaceOrderDocument, {
      input: { idempotencyKey: "multi", lines: [{ productId: product.id, quantity: 3 }] },
    });
    const orderId = placeOrder.order!.id;

    const inventory = watchInventory(b, product.id);
    const socket = b.customer("multi-buyer").ws();
    sockets.push(socket);
    const order = collect(socket, OrderUpdatedDocument, { orderId });
    await subscribed(b, 2);

    await a.admin.ok(RestockProductDocument, { input: { productId: product.id, quantity: 5 } });
    await a.admin.ok(PayOrderDocument, { input: { orderId } });

    await eventually(() => pushedAvailable(inventory).includes(10 - 3 + 5), { what: "the restock on instance B" });
    await eventually(() => order.results.some((r) => r.data?.orderUpdated.status === "PAID"), {
      what: "the payment on instance B",
    });
    expect(inventory.errors).toEqual([]);
    expect(order.errors).toEqual([]);
    expect(order.results.at(-1)?.data?.orderUpdated).toMatchObject({
      id: orderId,
      customerId: "multi-buyer",
      status: "PAID",
    });
    inventory.unsubscribe();
    order.unsubscribe();
  });

  it("moves a stopped instance's projections to the other within 5 s, and changes keep reaching read tables and subscribers", async () => {
    await shared();
    const [stopped, survivor] = instances as [TestApp, TestApp];
    const product = await createProduct(stopped, 1);
    const inventory = watchInventory(survivor, product.id);
    await subscribed(survivor, 1);

    await stopInstance(stopped);
    await shared(5000);
    expect(await leadersShown(survivor)).toEqual([survivor.app.config.instanceId, survivor.app.config.instanceId]);

    const { restockProduct } = await survivor.admin.ok(RestockProductDocument, {
      input: { productId: product.id, quantity: 2 },
    });
    expect(restockProduct.product).toMatchObject({ available: 3 });
    await eventually(() => pushedAvailable(inventory).includes(3), { what: "the restock pushed after the take-over" });
    inventory.unsubscribe();

    // A second instance again, for the tests below: it gets its share back.
    await startInstance();
    await shared();
  });

  it("moves the leases of a session that dies to a live one, and keeps projecting", async () => {
    await shared();
    const [a, b] = instances as [TestApp, TestApp];
    const [killed] = (await leases()).filter((h) => h.instance === a.app.config.instanceId);
    expect(killed).toBeDefined();
    const product = await createProduct(a, 4);
    const inventory = watchInventory(b, product.id);
    await subscribed(b, 1);

    await db.sql(`SELECT pg_terminate_backend($1)`, [killed!.pid]);
    await eventually(async () => (await leases()).every((h) => h.pid !== killed!.pid), {
      what: "the killed session gone",
    });
    await shared(5000);

    const { restockProduct } = await a.admin.ok(RestockProductDocument, {
      input: { productId: product.id, quantity: 6 },
    });
    expect(restockProduct.product).toMatchObject({ available: 10 });
    await eventually(() => pushedAvailable(inventory).includes(10), {
      what: "the restock after the leases moved",
    });
    expect((await b.anonymous.ok(ProductDocument, { id: product.id })).product).toMatchObject({ available: 10 });
    inventory.unsubscribe();
  });

  it("keeps read-your-writes and subscriptions working when the LISTEN connections drop", async () => {
    const [a, b] = instances as [TestApp, TestApp];
    const product = await createProduct(a, 0);
    const inventory = watchInventory(b, product.id);
    await subscribed(b, 1);

    const listening = async () =>
      db.sql<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'listen %'`,
      );
    const before = (await listening()).map((r) => r.pid);
    expect(before.length).toBeGreaterThanOrEqual(3); // each instance's change feed and the leader's wake-up
    await db.sql(`SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, [before]);

    // Read-your-writes right away: the mutation's wait ends on the notification or on the
    // checkpoints re-read when the change feed reconnects.
    const { restockProduct } = await a.admin.ok(RestockProductDocument, {
      input: { productId: product.id, quantity: 1 },
    });
    expect(restockProduct.product).toMatchObject({ available: 1, inStock: true });

    await eventually(
      async () => {
        const now = (await listening()).map((r) => r.pid);
        return now.length === before.length && now.every((pid) => !before.includes(pid));
      },
      { what: "every LISTEN connection to be back" },
    );

    const { restockProduct: again } = await b.admin.ok(RestockProductDocument, {
      input: { productId: product.id, quantity: 1 },
    });
    expect(again.product).toMatchObject({ available: 2 });
    await eventually(() => pushedAvailable(inventory).includes(2), { what: "the change pushed after the reconnect" });
    expect(inventory.errors).toEqual([]);
    inventory.unsubscribe();
  });
});
