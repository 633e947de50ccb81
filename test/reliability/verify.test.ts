import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { setupFile } from "../support/app";
import { TEST_JWT_SECRET } from "../support/client";
import {
  CancelOrderDocument,
  CreateProductDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  RestockProductDocument,
  ShipOrderDocument,
} from "../../src/storefront/generated/graphql";
import { formatReport, verify } from "../../src/verify/verify";
import { CommandBus } from "../../src/write/commandBus";
import { placeOrder } from "../../src/write/orders/commands/placeOrder";
import { uuid } from "../../src/shared/clock";
import { eventually } from "../support/wait";

// `npm run verify` must pass on a healthy database and name each kind of damage it is there to
// find. The damage is done by hand, in SQL, to a database no other test uses.

let t: Awaited<ReturnType<typeof setupFile>>;
let productId: string;
let orderIds: string[];
beforeAll(async () => {
  t = await setupFile({ readYourWritesTimeoutMs: 300 });
  // Ids come from the write model: the read-back of a mutation may be null when the machine is slow.
  await t.admin.ok(CreateProductDocument, {
    input: { sku: "VERIFY-1", name: "Verified kettle", priceCents: 1000, initialStock: 10 },
  });
  productId = (await t.db.sql<{ id: string }>(`SELECT id::text AS id FROM "write".products WHERE sku = 'VERIFY-1'`))[0]!
    .id;
  await t.admin.ok(RestockProductDocument, { input: { productId, quantity: 5 } });
  orderIds = [];
  for (const [i, quantity] of [2, 3, 1, 4].entries()) {
    await t
      .customer(`verify-${i}`)
      .ok(PlaceOrderDocument, { input: { idempotencyKey: `v-${i}`, lines: [{ productId, quantity }] } });
    orderIds.push(
      (
        await t.db.sql<{ id: string }>(
          `SELECT order_id::text AS id FROM (SELECT k.actor_id AS customer_id, k.key, e.stream_id AS order_id FROM "write".command_keys k JOIN "write".events e ON e.tx_id = k.tx_id AND e.type = 'OrderPlaced' WHERE k.command = 'placeOrder') AS k WHERE customer_id = $1`,
          [`verify-${i}`],
        )
      )[0]!.id,
    );
  }
  // One of each fate: paid, shipped, cancelled, still placed.
  await t.admin.ok(PayOrderDocument, { input: { orderId: orderIds[0]! } });
  await t.admin.ok(PayOrderDocument, { input: { orderId: orderIds[1]! } });
  await t.admin.ok(ShipOrderDocument, { input: { orderId: orderIds[1]! } });
  await t.customer("verify-2").ok(CancelOrderDocument, { input: { orderId: orderIds[2]! } });
});
afterAll(async () => t?.teardown());

const check = (waitMs = 5_000) => verify(t.app.db!, { waitMs });

/** Runs a damaging statement, expects verify to report it, and repairs it. */
async function expectFound(damage: string, repair: string, ...expected: RegExp[]) {
  await t.db.sql(damage);
  try {
    const result = await check();
    expect(result.ok).toBe(false);
    for (const pattern of expected)
      expect(
        result.problems.some((p) => pattern.test(p)),
        `${pattern} in\n${result.problems.join("\n")}`,
      ).toBe(true);
    expect(formatReport(result).split("\n").at(-1)).toBe(
      `verify: ${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}`,
    );
  } finally {
    await t.db.sql(repair);
  }
}

describe("verifying a database", () => {
  it("finds nothing wrong after products, restocks and orders that were paid, shipped and cancelled", async () => {
    const result = await check();
    expect(result.problems).toEqual([]);
    expect(result.compared).toEqual(["catalog", "orders"]);
    expect(formatReport(result)).toBe("verify: OK (1 products, 4 orders, 10 events)");
  });

  it("reports a catalog row whose stock differs from the inventory", async () => {
    await expectFound(
      `UPDATE "read".products SET available = available + 7, in_stock = true WHERE id = '${productId}'`,
      `UPDATE "read".products SET available = available - 7 WHERE id = '${productId}'`,
      /^read\.products product .* \(VERIFY-1\): available is \d+, expected \d+$/,
    );
  });

  it("reports a row_key that is not the row's id as a number (its position would name another row)", async () => {
    await expectFound(
      `UPDATE "read".products SET row_key = row_key + 1 WHERE id = '${productId}';
       UPDATE "read".orders SET row_key = 0 WHERE id = '${orderIds[2]}'`,
      `UPDATE "read".products SET row_key = "read".row_key(id) WHERE id = '${productId}';
       UPDATE "read".orders SET row_key = "read".row_key(id) WHERE id = '${orderIds[2]}'`,
      /^read\.products product .* \(VERIFY-1\): row_key is "\d+", expected "\d+"$/,
      new RegExp(`^read\\.orders order ${orderIds[2]} .*: row_key is "0", expected "\\d+"$`),
    );
  });

  it("reports a product count (what totalCount answers) that differs from the catalog's rows", async () => {
    await expectFound(
      `UPDATE "read".catalog_counts SET in_stock = in_stock + 1`,
      `UPDATE "read".catalog_counts SET in_stock = in_stock - 1`,
      /^read\.catalog_counts: products 1, in stock \d+; read\.products has 1 and \d+$/,
    );
  });

  it("reports units sold that count a cancelled order", async () => {
    await expectFound(
      `UPDATE "read".products SET units_sold = units_sold + 1 WHERE id = '${productId}'`,
      `UPDATE "read".products SET units_sold = units_sold - 1 WHERE id = '${productId}'`,
      /units_sold is \d+, expected \d+/,
    );
  });

  it("reports an order missing from the read side, and one with the wrong status or lines", async () => {
    // As text: parsed, its row_key (a 39-digit number) would not come back whole.
    const [saved] = await t.db.sql<{ row: string }>(
      `SELECT to_jsonb(o)::text AS row FROM "read".orders o WHERE id = '${orderIds[3]}'`,
    );
    await expectFound(
      `DELETE FROM "read".orders WHERE id = '${orderIds[3]}';
       UPDATE "read".orders SET status = 'PLACED' WHERE id = '${orderIds[0]}';
       UPDATE "read".orders SET lines = '[]' WHERE id = '${orderIds[1]}'`,
      `INSERT INTO "read".orders SELECT * FROM jsonb_populate_record(NULL::"read".orders, '${saved!.row}');
       UPDATE "read".orders SET status = 'PAID' WHERE id = '${orderIds[0]}';
       UPDATE "read".orders o SET lines = e.data->'lines' FROM "write".events e WHERE o.id = '${orderIds[1]}' AND e.stream_id = o.id AND e.type = 'OrderPlaced'`,
      new RegExp(`^read\\.orders order ${orderIds[3]} \\(customer verify-3\\): missing from the read table$`),
      new RegExp(`^read\\.orders order ${orderIds[0]} .*: status is "PLACED", expected "PAID"$`),
      new RegExp(`^read\\.orders order ${orderIds[1]} .*: lines is \\[\\], expected \\[\\{`),
    );
    expect((await check()).problems).toEqual([]);
  });

  it("reports a cancellation reason or a payment deadline on the read side that the log does not give", async () => {
    await expectFound(
      `UPDATE "read".orders SET cancellation_reason = 'PAYMENT_TIMEOUT' WHERE id = '${orderIds[2]}';
       UPDATE "read".orders SET expires_at = NULL WHERE id = '${orderIds[3]}'`,
      `UPDATE "read".orders SET cancellation_reason = 'CUSTOMER' WHERE id = '${orderIds[2]}';
       UPDATE "read".orders o SET expires_at = w.expires_at FROM "write".orders w WHERE o.id = '${orderIds[3]}' AND w.id = o.id`,
      new RegExp(
        `^read\\.orders order ${orderIds[2]} .*: cancellation_reason is "PAYMENT_TIMEOUT", expected "CUSTOMER"$`,
      ),
      new RegExp(`^read\\.orders order ${orderIds[3]} .*: expires_at is null, expected "`),
    );
  });

  it("reports a payment deadline on the write side that the log did not set", async () => {
    await expectFound(
      `UPDATE "write".orders SET expires_at = now() WHERE id = '${orderIds[0]}'`,
      `UPDATE "write".orders SET expires_at = NULL WHERE id = '${orderIds[0]}'`,
      new RegExp(`^write\\.orders order ${orderIds[0]}: expires_at .*, but a PAID order's is null`),
    );
  });

  it("reports stock that the event log does not account for", async () => {
    await expectFound(
      `UPDATE "write".inventory SET on_hand = on_hand + 3, available = available + 3 WHERE product_id = '${productId}'`,
      `UPDATE "write".inventory SET on_hand = on_hand - 3, available = available - 3 WHERE product_id = '${productId}'`,
      /^write\.inventory product .* \(VERIFY-1\): on_hand is \d+, expected \d+; available is \d+, expected \d+/,
    );
  });

  it("reports a FAILED projection and does not compare its tables", async () => {
    await t.db.sql(`UPDATE "read".products SET name = 'tampered'`);
    await expectFound(
      `UPDATE "read".projection_checkpoints SET status = 'FAILED', last_error = 'boom' WHERE name = 'catalog'`,
      `UPDATE "read".projection_checkpoints SET status = 'RUNNING', last_error = NULL WHERE name = 'catalog'`,
      /^projection catalog is FAILED: boom$/,
    );
    const result = await check();
    expect(result.problems).toEqual([expect.stringMatching(/name is "tampered", expected "Verified kettle"/)]);
    await t.db.sql(`UPDATE "read".products SET name = 'Verified kettle'`);
  });

  it("waits for a projection that is behind, and reports it when it does not catch up", async () => {
    await t.app.projector!.stop();
    try {
      await t
        .customer("verify-late")
        .ok(PlaceOrderDocument, { input: { idempotencyKey: "late", lines: [{ productId, quantity: 1 }] } });
      const result = await check(300);
      expect(result.problems).toEqual(
        expect.arrayContaining(["projection catalog is 1 events behind", "projection orders is 1 events behind"]),
      );
    } finally {
      await t.app.projector!.start();
    }
    expect((await check()).problems).toEqual([]);
  });

  it(
    "prints the report and exits 1 from `npm run verify` when an event breaks a stream's versions",
    { timeout: 60_000 },
    async () => {
      // Events are append-only, so this damage stays: it is the last test of the file.
      await t.db
        .sql(`INSERT INTO "write".events (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
                    VALUES ('${orderIds[3]}', 'order', 9, 'OrderPaid', '{}', '{}', now())`);
      const run = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/verify.ts"], {
        cwd: resolve(import.meta.dirname, "../.."),
        env: { ...process.env, DATABASE_URL: t.db.url, JWT_SECRET: TEST_JWT_SECRET },
        timeout: 50_000, // under the test's own: a hung child never outlives it
      }).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
      );
      expect(run.code).toBe(1);
      const lines = run.stdout.trim().split("\n");
      expect(lines).toEqual(
        expect.arrayContaining([
          `write.events stream ${orderIds[3]} (order): versions 1..9 over 2 events (expected 1..2 without gaps)`,
          `write.events stream ${orderIds[3]} (order): last event is version 9, the write row has version 1`,
          `write.orders order ${orderIds[3]}: status PLACED, but its last event is OrderPaid`,
        ]),
      );
      expect(lines.at(-1)).toMatch(/^verify: \d+ problems$/);
    },
  );
});

describe("verifying the order expiry", () => {
  it("reports a PLACED order long past its payment deadline while the expiry is stopped, and nothing once it runs", async () => {
    await t.app.expiry!.stop();
    let orderId = "";
    try {
      // An order placed an hour ago, with a one-second deadline: what an instance that stopped expiring leaves.
      const placedAt = new Date(Date.now() - 3600_000);
      const bus = new CommandBus(t.app.db!, { now: () => placedAt }, uuid, { orderPaymentTimeoutSeconds: 1 });
      const { result } = await bus.dispatch(
        placeOrder,
        { idempotencyKey: "v-stuck", lines: [{ productId, quantity: 1 }] },
        { kind: "user", id: "verify-stuck", role: "customer" },
        { correlationId: "verify-stuck" },
      );
      orderId = result.orderId;
      const problems = (await check()).problems;
      expect(problems).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^write\\.orders order ${result.orderId}: PLACED, its payment deadline passed at .*: the order expiry has not cancelled it$`,
          ),
        ),
      );
    } finally {
      t.app.expiry!.start();
    }
    // (Earlier tests of this file leave damage of their own in the append-only log: only this order's problems count.)
    await eventually(async () => !(await check()).problems.some((p) => p.includes(orderId)), {
      timeoutMs: 15_000,
      what: "the expiry to catch up",
    });
    const [order] = await t.db.sql(`SELECT status, expires_at FROM "write".orders WHERE id = $1`, [orderId]);
    expect(order).toEqual({ status: "CANCELLED", expires_at: null });
  });
});
