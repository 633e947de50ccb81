import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { ADMIN_URL } from "../support/globalSetup";
import { freshDatabase, type TestDatabase } from "../support/db";
import { collect, GraphQLClient, token, type GqlResponse } from "../support/client";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  PlaceOrderDocument,
} from "../../src/storefront/generated/graphql";
import { freePort } from "../support/ports";
import { ServerProcess, untilAnswered, verifyDatabase } from "./serverProcess";

// The Postgres server itself is shared by every test file, so it is not restarted: every
// connection the API holds to its database is terminated instead (pg_terminate_backend), which
// is what the API sees of a database restart or failover.
const ROUNDS = Number(process.env.RELIABILITY_ROUNDS ?? 3);
const CLIENTS = 6;

let db: TestDatabase;
let server: ServerProcess;
let admin: pg.Client;

beforeAll(async () => {
  db = await freshDatabase();
  server = new ServerProcess(db.url, await freePort(), { DB_POOL_SIZE: "8" });
  await server.start();
  admin = new pg.Client({ connectionString: ADMIN_URL }); // on another database: never terminated
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await server?.stop();
  await db?.drop();
});

/** Terminates every backend on the test database but the caller's; returns how many. */
async function terminateAll(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    // MATERIALIZED: the filter runs first (in one WHERE, Postgres may call pg_terminate_backend before pid <> pg_backend_pid()).
    `WITH targets AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid())
     SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM targets`,
    [db.name],
  );
  return rows[0]!.n;
}

/** A request that died with the database connection: its outcome is unknown, send it again. */
const lostToTheDatabase = (res: GqlResponse<unknown>) =>
  res.status >= 500 || res.errors?.some((e) => e.extensions?.code === "INTERNAL_SERVER_ERROR") === true;

describe("the API's database connections terminated under load", () => {
  it(
    `reports it, recovers by itself and loses nothing, ${ROUNDS} times over`,
    // Generous: other test files load the same two cores meanwhile; every wait inside has its own deadline.
    { timeout: 60_000 + ROUNDS * 30_000 },
    async () => {
      const api = new GraphQLClient(server.url);
      const created = await api.as(token("admin", "ops")).ok(CreateProductDocument, {
        input: {
          sku: `PGT-${randomUUID().slice(0, 8)}`,
          name: "Connection test",
          priceCents: 300,
          initialStock: 100_000,
        },
      });
      const productId = created.createProduct.product!.id;

      // A live subscriber: it must be served again once the API has reconnected.
      const ws = api.ws();
      const inventory = collect(ws, InventoryChangedDocument, { productIds: [productId] });

      // What the service says about itself, all along.
      const readiness = { ready: 0, notReady: 0, unreachable: 0 };
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const status = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
            async (r) => (await r.arrayBuffer(), r.status),
            () => 0,
          );
          if (status === 200) readiness.ready += 1;
          else if (status === 503) readiness.notReady += 1;
          else readiness.unreachable += 1;
          await new Promise((r) => setTimeout(r, 20)); // polling interval of the observer
        }
      })();

      const keys: { customer: string; key: string; quantity: number; accepted?: boolean }[] = [];
      const unexpected: string[] = [];
      // A request the server never answers would stall the test silently: give up on it after
      // 20 s (it is sent again, same key) and report it.
      const hung: string[] = [];
      const stats = { retries: 0 };
      let answered = 0;
      let errorsSeen = 0;
      let loadDone = false;
      const client = async (i: number) => {
        const customer = `pgt-customer-${i}`;
        const me = api.as(token("customer", customer));
        for (let n = 0; !loadDone && n < 5000; n++) {
          const entry: (typeof keys)[number] = { customer, key: `pgt-${i}-${n}`, quantity: 1 + (n % 3) };
          keys.push(entry);
          const res = await untilAnswered(
            () => {
              let timer: NodeJS.Timeout | undefined;
              const giveUp = new Promise<never>((_, reject) => {
                timer = setTimeout(() => {
                  hung.push(entry.key);
                  reject(new Error(`no answer within 20 s to ${entry.key}`));
                }, 20_000);
              });
              const sent = me.request(PlaceOrderDocument, {
                input: { idempotencyKey: entry.key, lines: [{ productId, quantity: entry.quantity }] },
              });
              return Promise.race([sent, giveUp]).finally(() => clearTimeout(timer));
            },
            stats,
            {
              unknown: lostToTheDatabase,
              onUnknown: () => (errorsSeen += 1),
            },
          );
          answered += 1;
          if (res.data?.placeOrder && !res.errors) entry.accepted = true;
          else unexpected.push(`${entry.key}: ${JSON.stringify(res.errors)}`);
        }
      };
      const load = Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));

      const terminated: number[] = [];
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const target = answered + 10 + Math.floor(Math.random() * 30);
          await eventually(() => answered >= target, { timeoutMs: 30_000, what: `${target} answered orders` });
          terminated.push(await terminateAll());
          // Recovered by itself: ready again, and orders are answered again.
          const after = answered;
          await eventually(
            async () =>
              answered > after + CLIENTS &&
              (await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(5_000) })).status === 200,
            { timeoutMs: 30_000, what: "recovery" },
          ).catch(async (error: unknown) => {
            const readyz = await fetch(`${server.url}/readyz`).then((r) => r.text());
            throw new Error(`${String(error)}; /readyz: ${readyz}; the server wrote:\n${server.output()}`);
          });
        }
      } finally {
        loadDone = true;
        // Each client ends after its request in flight; one the server never answers is given up
        // after 20 s and sent again: report that instead of running into the test's own timeout.
        let stalled: NodeJS.Timeout | undefined;
        await Promise.race([
          load,
          new Promise<never>((_, reject) => {
            stalled = setTimeout(
              () =>
                reject(
                  new Error(
                    `the load did not end within 45 s (hung: ${hung.join(", ")}); the server wrote:\n${server.output()}`,
                  ),
                ),
              45_000,
            );
          }),
        ]).finally(() => clearTimeout(stalled));
        watching = false;
        await watcher;
      }

      expect(hung, `requests left unanswered; the server wrote:\n${server.output()}`).toEqual([]);
      expect(unexpected).toEqual([]);
      expect(terminated.every((n) => n > 0)).toBe(true);
      // It noticed: /readyz said not ready, or requests failed while the connections were gone.
      expect(readiness.notReady + errorsSeen).toBeGreaterThan(0);

      // A new order succeeds, read side included, and the subscriber is served again.
      const seen = inventory.results.length;
      let ordersAfter = 0;
      await eventually(
        async () => {
          const res = await api.as(token("customer", "pgt-after")).request(PlaceOrderDocument, {
            input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] },
          });
          if (res.data?.placeOrder.order?.status !== "PLACED")
            throw new Error(`order after recovery: ${JSON.stringify(res.errors ?? res.data)}`);
          ordersAfter += 1;
          return inventory.results.length > seen;
        },
        { timeoutMs: 15_000, intervalMs: 200, what: "a pushed inventory change after the reconnect" },
      );
      inventory.unsubscribe();
      await ws.dispose();

      // Nothing lost or doubled: one order per accepted key, reserved = what was accepted.
      const accepted = keys.filter((k) => k.accepted);
      const [row] = await db.sql<{ orders: number; keys: number; reserved: number }>(
        `SELECT (SELECT count(*)::int FROM "write".orders) AS orders, (SELECT count(*)::int FROM "write".command_keys WHERE command = 'placeOrder') AS keys,
              (SELECT reserved FROM "write".inventory WHERE product_id = $1) AS reserved`,
        [productId],
      );
      expect(row!.orders).toBe(accepted.length + ordersAfter);
      expect(row!.keys).toBe(accepted.length + ordersAfter);
      expect(row!.reserved).toBe(accepted.reduce((sum, k) => sum + k.quantity, 0) + ordersAfter);
      const orderKeys = await db.sql<{ customer_id: string; key: string }>(
        `SELECT actor_id AS customer_id, key FROM "write".command_keys WHERE command = 'placeOrder' AND actor_id LIKE 'pgt-customer-%'`,
      );
      expect(orderKeys.map((k) => `${k.customer_id}/${k.key}`).sort()).toEqual(
        accepted.map((k) => `${k.customer}/${k.key}`).sort(),
      );

      const result = await verifyDatabase(db.url);
      expect(result.problems).toEqual([]);
      expect(result.ok).toBe(true);
      console.log(
        `postgres connections: ${terminated.length} rounds of pg_terminate_backend (${terminated.join(", ")} backends) under ${CLIENTS} clients; ` +
          `${accepted.length} orders accepted, ${stats.retries} requests retried with the same idempotency key (${errorsSeen} lost to the database); ` +
          `/readyz answered ready ${readiness.ready}, not ready ${readiness.notReady} times; verify: ${result.counts.orders} orders, ${result.counts.events} events, 0 problems`,
      );
    },
  );
});
