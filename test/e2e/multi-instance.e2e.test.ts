import { randomUUID } from "node:crypto";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../support/app";
import { collect } from "../support/client";
import { freshDatabase, type TestDatabase } from "../support/db";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  OrderUpdatedDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  ProductDocument,
  RestockProductDocument,
} from "../generated/graphql";

// Several API instances on one database: one projector leader (advisory lock), every
// instance's subscribers fed through NOTIFY read_changed.

const LEADER_LOCK_KEY = 72_707_002; // src/projection/projector.ts
const CONFIG = { projectorPollMs: 200 };

let db: TestDatabase;
const instances: TestApp[] = [];
const sockets: Client[] = [];

async function startInstance(): Promise<TestApp> {
  const instance = await startTestApp(db, CONFIG);
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

/** Waits until exactly one running instance leads, and returns it with one that does not. */
async function leaderAndStandby(timeoutMs = 5000): Promise<{ leader: TestApp; standby: TestApp }> {
  const leader = await eventually(() => (leaders().length === 1 ? leaders()[0] : undefined), {
    timeoutMs,
    what: "exactly one projector leader",
  });
  return { leader, standby: instances.find((i) => i !== leader)! };
}

/** Backends holding the projector's leader lock on this database. */
async function lockHolders(): Promise<number[]> {
  const rows = await db.sql<{ pid: number }>(
    `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
      WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() AND l.objid = $1 AND l.objsubid = 1`,
    [LEADER_LOCK_KEY],
  );
  return rows.map((r) => r.pid);
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
  it("has exactly one projector leader, holding the lock in one database session", async () => {
    expect(instances).toHaveLength(2);
    await leaderAndStandby();
    expect(await lockHolders()).toHaveLength(1);
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

  it("lets the standby take over within 5 s when the leader stops, and changes keep reaching read tables and subscribers", async () => {
    const { leader, standby } = await leaderAndStandby();
    const product = await createProduct(leader, 1);
    const inventory = watchInventory(standby, product.id);
    await subscribed(standby, 1);

    await stopInstance(leader);
    await eventually(() => standby.app.projector?.isLeader, { timeoutMs: 5000, what: "the standby to lead" });

    const { restockProduct } = await standby.admin.ok(RestockProductDocument, {
      input: { productId: product.id, quantity: 2 },
    });
    expect(restockProduct.product).toMatchObject({ available: 3 });
    await eventually(() => pushedAvailable(inventory).includes(3), { what: "the restock pushed after the take-over" });
    inventory.unsubscribe();

    // A second instance again, for the tests below.
    await startInstance();
    await leaderAndStandby();
  });

  it("moves the lead to another session when the leader's database session dies, and keeps projecting", async () => {
    const { leader, standby } = await leaderAndStandby();
    const [killed] = await lockHolders();
    expect(killed).toBeDefined();
    const product = await createProduct(leader, 4);
    const inventory = watchInventory(standby, product.id);
    await subscribed(standby, 1);

    await db.sql(`SELECT pg_terminate_backend($1)`, [killed]);
    await eventually(
      async () => {
        const holders = await lockHolders();
        return holders.length === 1 && holders[0] !== killed && leaders().length === 1;
      },
      { timeoutMs: 5000, what: "a new leader session" },
    );

    const { restockProduct } = await leader.admin.ok(RestockProductDocument, {
      input: { productId: product.id, quantity: 6 },
    });
    expect(restockProduct.product).toMatchObject({ available: 10 });
    await eventually(() => pushedAvailable(inventory).includes(10), {
      what: "the restock after the new leader took over",
    });
    expect((await standby.anonymous.ok(ProductDocument, { id: product.id })).product).toMatchObject({ available: 10 });
    inventory.unsubscribe();
  });

  it("keeps read-your-writes and subscriptions working when the LISTEN connections drop", async () => {
    const [a, b] = instances as [TestApp, TestApp];
    const product = await createProduct(a, 0);
    const inventory = watchInventory(b, product.id);
    await subscribed(b, 1);

    const listening = async () =>
      db.sql<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`,
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
