import { randomUUID } from "node:crypto";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, GraphQLClient, token } from "../support/client";
import { freshDatabase, type TestDatabase } from "../support/db";
import { freePort } from "../support/ports";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  PlaceOrderDocument,
  ProductDocument,
  ProductsDocument,
  ProjectionsDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";
import { ServerProcess, verifyDatabase } from "./serverProcess";

// The topology of a shop that outgrew one server, as separate OS processes on two databases:
//   A  SERVICES=commands,projector   DATABASE_URL + READ_DATABASE_URL
//   C  SERVICES=queries,projector    DATABASE_URL + READ_DATABASE_URL
//   B  SERVICES=queries              READ_DATABASE_URL only: it never connects to the write database
// The projections' leases are shared by A and C; B answers queries and subscriptions.

let writeDb: TestDatabase;
let readDb: TestDatabase;
const servers: Record<"A" | "B" | "C", ServerProcess> = {} as never;
const sockets: Client[] = [];

beforeAll(async () => {
  [writeDb, readDb] = await Promise.all([freshDatabase({ empty: true }), freshDatabase({ empty: true })]);
  const read = { READ_DATABASE_URL: readDb.url };
  servers.A = new ServerProcess(writeDb.url, await freePort(), {
    ...read,
    SERVICES: "commands,projector",
    INSTANCE_ID: "A",
  });
  await servers.A.start(); // migrates both databases
  servers.B = new ServerProcess("", await freePort(), { ...read, SERVICES: "queries", INSTANCE_ID: "B" });
  servers.C = new ServerProcess(writeDb.url, await freePort(), {
    ...read,
    SERVICES: "queries,projector",
    INSTANCE_ID: "C",
  });
  await Promise.all([servers.B.start(), servers.C.start()]);
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.dispose()));
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  await Promise.all([writeDb?.drop(), readDb?.drop()]);
});

const api = (name: "A" | "B" | "C") => new GraphQLClient(servers[name].url);
const admin = (name: "A" | "B" | "C") => api(name).as(token("admin", "ops"));
const eventCount = async () =>
  (await writeDb.sql<{ n: number }>(`SELECT count(*)::int AS n FROM "write"."events"`))[0]!.n;

async function createProduct(stock: number) {
  const sku = `SS-${randomUUID().slice(0, 8)}`;
  const { createProduct } = await admin("A").ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 500, initialStock: stock },
  });
  // the payload's product comes from the read database, on an instance that serves no queries
  expect(createProduct.product).toMatchObject({ sku, available: stock });
  return createProduct.product!;
}

describe("instances that serve part of the API (SERVICES), on a write and a read database", () => {
  it("answers NOT_SERVED, with HTTP 200, for what an instance does not serve, and writes nothing", async () => {
    const before = await eventCount();
    const mutation = await admin("B").request(CreateProductDocument, {
      input: { sku: `SS-${randomUUID().slice(0, 8)}`, name: "Refused", priceCents: 100, initialStock: 1 },
    });
    expect(mutation.status).toBe(200);
    expect(mutation.errors?.map((e) => e.extensions?.code)).toEqual(["NOT_SERVED"]);
    expect(mutation.errors?.[0]?.message).toMatch(/does not serve mutations/);
    expect(await eventCount()).toBe(before);

    for (const name of ["A"] as const) {
      const query = await api(name).request(ProductsDocument, { first: 1 });
      expect(query.status).toBe(200);
      expect(query.errors?.map((e) => e.extensions?.code)).toEqual(["NOT_SERVED"]);
      const status = await admin(name).request(ProjectionsDocument, {});
      expect(status.errors?.map((e) => e.extensions?.code)).toEqual(["NOT_SERVED"]);
    }

    const socket = api("A").ws();
    sockets.push(socket);
    const refused = collect(socket, InventoryChangedDocument, { productIds: null });
    await eventually(() => refused.errors.length > 0 || refused.results.some((r) => r.errors), {
      what: "the subscription to be refused",
    });
    expect(JSON.stringify([...refused.errors, ...refused.results])).toContain("NOT_SERVED");
  });

  it("pushes to a subscriber on B an order placed on A, and B's query right after A's mutation sees it", async () => {
    const product = await createProduct(6);
    const socket = api("B").ws();
    sockets.push(socket);
    const pushed = collect(socket, InventoryChangedDocument, { productIds: [product.id] });
    // subscribed once B answers a query about the product (the socket is up, the subscription registered)
    // the subscription is live on the server (its gauge counts it), so no change can slip by before it
    await eventually(
      async () => /^shop_graphql_subscriptions [1-9]/m.test(await (await fetch(`${servers.B.url}/metrics`)).text()),
      { what: "the subscription to be live" },
    );

    const { placeOrder } = await api("A")
      .as(token("customer", "ss-buyer"))
      .ok(PlaceOrderDocument, {
        input: { idempotencyKey: randomUUID(), lines: [{ productId: product.id, quantity: 2 }] },
      });
    expect(placeOrder.order).toMatchObject({ status: "PLACED", itemCount: 2 });
    await eventually(() => pushed.results.some((r) => r.data?.inventoryChanged.available === 4), {
      what: "B's subscriber to hear of the order",
    });

    // A answered once the projection had committed the row in the read database: B reads it at once.
    const { restockProduct } = await admin("A").ok(RestockProductDocument, {
      input: { productId: product.id, quantity: 10 },
    });
    expect(restockProduct.product).toMatchObject({ available: 14 });
    expect((await api("B").ok(ProductDocument, { id: product.id })).product).toMatchObject({
      available: 14,
      unitsSold: 2,
    });
  });

  it("moves the projections of a projector killed with -9 to the other within 5 s, and verify finds nothing wrong", async () => {
    const leaders = async () => (await admin("B").ok(ProjectionsDocument, {})).projections.map((p) => p.leader);
    const shared = await eventually(
      async () => {
        const now = await leaders();
        return now.length === 2 && now.every((l) => l === "A" || l === "C") && now;
      },
      { what: "A and C to lead the projections" },
    );
    const victim = shared[0] as "A" | "C";
    const survivor = victim === "A" ? "C" : "A";
    await servers[victim].kill9();
    await eventually(async () => (await leaders()).every((l) => l === survivor), {
      timeoutMs: 5000,
      intervalMs: 100,
      what: `${survivor} to lead every projection`,
    });

    await servers[victim].start();
    const product = await createProduct(3);
    await eventually(async () => (await api("B").ok(ProductDocument, { id: product.id })).product?.available === 3, {
      what: "the projections to go on",
    });

    const result = await verifyDatabase(writeDb.url, readDb.url, 10_000);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });
});
