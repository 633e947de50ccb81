import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { freshDatabase, type TestDatabase } from "../support/db";
import { GraphQLClient, token } from "../support/client";
import { eventually } from "../support/wait";
import { CancelOrderDocument, CreateProductDocument, PlaceOrderDocument } from "../../src/storefront/generated/graphql";
import { freePort } from "../support/ports";
import { ServerProcess, untilAnswered, verifyDatabase } from "./serverProcess";

// CI runs 3 kills; RELIABILITY_ROUNDS=20 npx vitest run test/reliability/kill-9.test.ts for a long run.
const KILLS = Number(process.env.RELIABILITY_ROUNDS ?? 3);
const CLIENTS = 8;

interface Line {
  productId: string;
  quantity: number;
}

/** One order a client tried to place, and what it was finally told. */
interface Attempt {
  customer: string;
  key: string;
  lines: Line[];
  outcome?: "accepted" | "rejected";
  /** From the answer (null when the answer came before the read side had the order). */
  orderId?: string | null;
  /** When the client first lost an answer for this key. */
  firstUnknownAt?: number;
  cancelled?: boolean;
}

let db: TestDatabase;
let server: ServerProcess;

beforeAll(async () => {
  db = await freshDatabase();
  server = new ServerProcess(db.url, await freePort());
  await server.start();
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;

describe("the API process killed with SIGKILL under concurrent order load", () => {
  it(
    `keeps every order either accepted exactly once or rejected, across ${KILLS} kills and restarts`,
    { timeout: 60_000 + KILLS * 20_000 },
    async () => {
      const admin = new GraphQLClient(server.url).as(token("admin", "ops"));
      // One scarce product (its orders run out of stock), two plentiful ones.
      const stock = [20, 400, 400];
      const products: { id: string; initial: number }[] = [];
      for (const [i, initial] of stock.entries()) {
        const sku = `K9-${i}-${randomUUID().slice(0, 6)}`;
        await admin.ok(CreateProductDocument, {
          input: { sku, name: `Kill test ${i}`, priceCents: 100 + i * 150, initialStock: initial },
        });
        const [row] = await db.sql<{ id: string }>(`SELECT id::text AS id FROM "write".products WHERE sku = $1`, [sku]);
        products.push({ id: row!.id, initial });
      }

      const attempts: Attempt[] = [];
      const unexpected: string[] = [];
      const stats = { retries: 0 };
      let answered = 0;
      let rejected = 0;
      let loadDone = false;

      const client = async (i: number) => {
        const customer = `k9-customer-${i}`;
        const api = new GraphQLClient(server.url).as(token("customer", customer));
        for (let n = 0; !loadDone && n < 2000; n++) {
          const first = pick(products);
          const second = Math.random() < 0.5 ? pick(products.filter((p) => p !== first)) : undefined;
          const lines = [first, second]
            .filter((p) => p !== undefined)
            .map((p) => ({ productId: p.id, quantity: 1 + Math.floor(Math.random() * 3) }));
          const attempt: Attempt = { customer, key: `k9-${i}-${n}`, lines };
          attempts.push(attempt);
          const res = await untilAnswered(
            () => api.request(PlaceOrderDocument, { input: { idempotencyKey: attempt.key, lines } }),
            stats,
            {
              onUnknown: () => (attempt.firstUnknownAt ??= Date.now()),
            },
          );
          answered += 1;
          if (res.data?.placeOrder && !res.errors) {
            attempt.outcome = "accepted";
            attempt.orderId = res.data.placeOrder.order?.id ?? null;
          } else if (res.errors?.[0]?.extensions?.code === "OUT_OF_STOCK") {
            attempt.outcome = "rejected";
            rejected += 1;
          } else {
            unexpected.push(`placeOrder ${attempt.key}: ${res.status} ${JSON.stringify(res.errors)}`);
          }

          // Now and then the customer cancels, so released stock is part of what must balance.
          if (attempt.orderId && Math.random() < 0.2) {
            let lostAnswer = false;
            const cancel = await untilAnswered(
              () => api.request(CancelOrderDocument, { input: { orderId: attempt.orderId! } }),
              stats,
              {
                onUnknown: () => (lostAnswer = true),
              },
            );
            const code = cancel.errors?.[0]?.extensions?.code;
            // INVALID_STATE after a lost answer: the first attempt did cancel it.
            if (!cancel.errors || (code === "INVALID_STATE" && lostAnswer)) attempt.cancelled = true;
            else unexpected.push(`cancelOrder ${attempt.orderId}: ${JSON.stringify(cancel.errors)}`);
          }
        }
      };
      const load = Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));

      const kills: { at: number; answeredBefore: number }[] = [];
      try {
        for (let round = 0; round < KILLS; round++) {
          // Kill after a random number of answers since the restart: mid-load, at a random point.
          const target = answered + 8 + Math.floor(Math.random() * 40);
          await eventually(() => answered >= target, { timeoutMs: 30_000, what: `${target} answered requests` });
          kills.push({ at: Date.now(), answeredBefore: answered });
          await server.kill9();
          await server.start();
        }
        // Some load after the last restart, until the scarce product has turned orders away.
        const target = answered + 40;
        await eventually(() => answered >= target && rejected > 0, {
          timeoutMs: 30_000,
          what: "load after the last restart",
        });
      } finally {
        loadDone = true;
        await load;
      }

      expect(unexpected).toEqual([]);
      const accepted = attempts.filter((a) => a.outcome === "accepted");
      expect(accepted.length + rejected).toBe(attempts.length);

      // Each accepted key: exactly one order, of that customer, with the lines the client sent;
      // each rejected key: nothing at all. No order exists that no client was told about.
      const keys = await db.sql<{ customer_id: string; key: string; order_id: string }>(
        `SELECT customer_id, key, order_id::text AS order_id FROM (SELECT k.actor_id AS customer_id, k.key, e.stream_id AS order_id FROM "write".command_keys k JOIN "write".events e ON e.tx_id = k.tx_id AND e.type = 'OrderPlaced' WHERE k.command = 'placeOrder') AS k`,
      );
      const orderOfKey = new Map(keys.map((k) => [`${k.customer_id}/${k.key}`, k.order_id]));
      const orders = await db.sql<{ id: string; customer_id: string; status: string; lines: Line[] }>(
        `SELECT o.id::text AS id, o.customer_id, o.status,
              (SELECT jsonb_agg(jsonb_build_object('productId', l.product_id::text, 'quantity', l.quantity) ORDER BY l.product_id) FROM "write".order_lines l WHERE l.order_id = o.id) AS lines
         FROM "write".orders o`,
      );
      const orderById = new Map(orders.map((o) => [o.id, o]));
      expect(orders).toHaveLength(accepted.length);
      expect(keys).toHaveLength(accepted.length);
      for (const a of attempts) {
        const orderId = orderOfKey.get(`${a.customer}/${a.key}`);
        if (a.outcome === "rejected") {
          expect(orderId, `rejected key ${a.key} has an order`).toBeUndefined();
          continue;
        }
        expect(orderId, `accepted key ${a.key} has no order`).toBeDefined();
        if (a.orderId) expect(a.orderId).toBe(orderId);
        const order = orderById.get(orderId!)!;
        expect(order.customer_id).toBe(a.customer);
        expect(order.lines).toEqual([...a.lines].sort((x, y) => (x.productId < y.productId ? -1 : 1)));
        expect(order.status).toBe(a.cancelled ? "CANCELLED" : "PLACED");
      }

      // Stock: nothing shipped or restocked, so on hand is the initial stock; reserved is exactly
      // what the clients were told they have (accepted, not cancelled); never negative.
      const inventory = await db.sql<{ product_id: string; on_hand: number; reserved: number; available: number }>(
        `SELECT product_id::text AS product_id, on_hand, reserved, available FROM "write".inventory`,
      );
      for (const p of products) {
        const reserved = accepted
          .filter((a) => !a.cancelled)
          .flatMap((a) => a.lines)
          .filter((l) => l.productId === p.id)
          .reduce((s, l) => s + l.quantity, 0);
        expect(inventory.find((r) => r.product_id === p.id)).toEqual({
          product_id: p.id,
          on_hand: p.initial,
          reserved,
          available: p.initial - reserved,
        });
        expect(p.initial - reserved).toBeGreaterThanOrEqual(0);
      }

      // The read side agrees with the write side and the event log.
      const result = await verifyDatabase(db.url);
      expect(result.problems).toEqual([]);
      expect(result.ok).toBe(true);

      const placedAt = new Map(
        (await db.sql<{ id: string; placed_at: Date }>(`SELECT id::text AS id, placed_at FROM "write".orders`)).map(
          (o) => [o.id, o.placed_at.getTime()],
        ),
      );
      const retriedKeys = attempts.filter((a) => a.firstUnknownAt !== undefined);
      const committedBeforeLoss = retriedKeys.filter((a) => {
        const orderId = orderOfKey.get(`${a.customer}/${a.key}`);
        return orderId !== undefined && placedAt.get(orderId)! <= a.firstUnknownAt!;
      });
      console.log(
        `kill -9 reliability: ${kills.length} SIGKILLs under ${CLIENTS} concurrent clients; ${attempts.length} orders attempted: ` +
          `${accepted.length} accepted (${accepted.filter((a) => a.cancelled).length} later cancelled), ${rejected} rejected OUT_OF_STOCK; ` +
          `${stats.retries} requests retried with the same idempotency key over ${retriedKeys.length} orders, ` +
          `${committedBeforeLoss.length} of which had committed before their answer was lost (answered from the idempotency record); ` +
          `verify: ${result.counts.products} products, ${result.counts.orders} orders, ${result.counts.events} events, 0 problems; ` +
          `server start-up to ready: ${server.startTimes.map((ms) => (ms / 1000).toFixed(1)).join(", ")} s`,
      );
    },
  );
});
