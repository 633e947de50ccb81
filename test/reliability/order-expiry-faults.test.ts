import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { freshDatabase, type TestDatabase } from "../support/db";
import { GraphQLClient, token } from "../support/client";
import { freePort } from "../support/ports";
import { eventually } from "../support/wait";
import { CreateProductDocument, PlaceOrderDocument } from "../../src/storefront/generated/graphql";
import { ServerProcess, verifyDatabase } from "./serverProcess";

// The order expiry across processes: two instances on one database, 200 orders left unpaid,
// the instance that dispatches the expiries killed with SIGKILL while it is at it. Each order
// must expire exactly once (one OrderCancelled each) and verify must find nothing wrong.

const ORDERS = 200;
const TIMEOUT_SECONDS = 2;
let db: TestDatabase;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  db = await freshDatabase();
  for (const id of ["expiry-a", "expiry-b"]) {
    const server = new ServerProcess(db.url, await freePort(), {
      INSTANCE_ID: id,
      ORDER_PAYMENT_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
    });
    servers.push(server);
  }
  await Promise.all(servers.map((s) => s.start()));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await db?.drop();
});

const leads = async (server: ServerProcess) =>
  server.running &&
  /^shop_order_expiry_leader 1$/m.test(await (await fetch(`${server.url}/metrics`)).text().catch(() => ""));

const expiredCount = async () =>
  (
    await db.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM "write".events WHERE type = 'OrderCancelled' AND data->>'reason' = 'PAYMENT_TIMEOUT'`,
    )
  )[0]!.n;

describe("the instance expiring orders killed with -9 mid-way, another taking over", () => {
  it(`expires each of ${ORDERS} unpaid orders exactly once, and verify agrees`, { timeout: 120_000 }, async () => {
    const admin = new GraphQLClient(servers[0]!.url).as(token("admin", "ops"));
    const { createProduct } = await admin.ok(CreateProductDocument, {
      input: { sku: `XF-${randomUUID().slice(0, 8)}`, name: "Expiry faults", priceCents: 100, initialStock: 10_000 },
    });
    const productId = createProduct.product!.id;

    const leader = await eventually(
      async () => {
        for (const s of servers) if (await leads(s)) return s;
        return undefined;
      },
      { timeoutMs: 10_000, what: "an instance to lead the expiry" },
    );
    const survivor = servers.find((s) => s !== leader)!;

    // 200 orders, 8 at a time, through the instance that will survive (the kill must not cut the
    // load short): their deadlines fall over a second or more.
    let next = 0;
    const placing = Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        const api = new GraphQLClient(survivor.url).as(token("customer", `xf-${worker}`));
        while (next < ORDERS) {
          next += 1;
          await api.ok(PlaceOrderDocument, {
            input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 + (next % 3) }] },
          });
        }
      }),
    );
    await eventually(async () => (await expiredCount()) >= 20, { timeoutMs: 30_000, what: "expiries under way" });
    await leader.kill9();
    const expiredAtKill = await expiredCount();
    await placing;
    await eventually(() => leads(survivor), { timeoutMs: 10_000, what: "the other instance to take over" });
    await eventually(async () => (await expiredCount()) >= ORDERS, {
      timeoutMs: 60_000,
      what: "every order to expire",
    });
    await leader.start(); // back, it finds nothing left to do

    expect(expiredAtKill).toBeLessThan(ORDERS); // the kill came mid-way
    const perOrder = await db.sql<{ stream_id: string; events: string[] }>(
      `SELECT stream_id::text AS stream_id, array_agg(type ORDER BY stream_version) AS events
         FROM "write".events WHERE stream_type = 'order' GROUP BY stream_id`,
    );
    expect(perOrder).toHaveLength(ORDERS);
    for (const order of perOrder) expect(order.events).toEqual(["OrderPlaced", "OrderCancelled"]);
    const [stock] = await db.sql(`SELECT on_hand, reserved, available FROM "write".inventory WHERE product_id = $1`, [
      productId,
    ]);
    expect(stock).toEqual({ on_hand: 10_000, reserved: 0, available: 10_000 });
    const result = await verifyDatabase(db.url);
    expect(result.problems).toEqual([]);
  });
});
