import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database";
import { openPostgres } from "../../src/db/postgres";
import { ORDER_STATUSES, type OrderStatus } from "../../src/events";
import { OrderQueries, orderCursor } from "../../src/query/orders.queries";
import { freshDatabase, type TestDatabase } from "../support/db";

// OrderQueries.list() against a migrated database whose order table is filled directly (the
// query side is what is tested here, not the projection), compared with the plain definition:
// the customer's or the status's orders, newest first, ties on placed_at broken by id.

let tdb: TestDatabase;
let db: Database;
let orders: OrderQueries;

const CUSTOMERS = ["ann", "bob", "cy"];
const STATUSES: readonly OrderStatus[] = ORDER_STATUSES;

beforeAll(async () => {
  tdb = await freshDatabase();
  db = openPostgres(tdb.url, 3);
  orders = new OrderQueries(db);
  const base = Date.parse("2026-11-01T10:00:00.000Z");
  for (let n = 0; n < 40; n++) {
    // Groups of four share a placed_at, so the id decides their order.
    const placedAt = new Date(base + Math.floor(n / 4) * 1000 + (n % 7 === 0 ? 1 : 0));
    await tdb.sql(
      `INSERT INTO "read"."orders" (id, customer_id, status, total_cents, item_count, lines, placed_at, updated_at, version, row_key)
       VALUES ($1, $2, $3, $4, 1, $5::jsonb, $6, $6, 1, "read".row_key($1))`,
      [
        randomUUID(),
        CUSTOMERS[n % 3],
        STATUSES[n % 4],
        100 + n,
        JSON.stringify([
          { productId: randomUUID(), sku: `S-${n}`, name: `Item ${n}`, quantity: 1, unitPriceCents: 100 + n },
        ]),
        placedAt,
      ],
    );
  }
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

type Filter = { customerId?: string; status?: OrderStatus | null };

async function expected(filter: Filter): Promise<string[]> {
  const rows = await tdb.sql<{ id: string }>(
    `SELECT id::text AS id FROM "read"."orders" WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
      ORDER BY placed_at DESC, id DESC`,
    [filter.customerId ?? null, filter.status ?? null],
  );
  return rows.map((r) => r.id);
}

async function walk(filter: Filter, first: number, withCount: boolean) {
  const ids: string[] = [];
  const counts = new Set<number>();
  let after: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await orders.list(filter, first, after, { count: withCount });
    ids.push(...page.rows.map((r) => r.id));
    counts.add(await page.count());
    if (!page.hasNextPage) return { ids, counts };
    expect(page.rows).toHaveLength(first);
    after = orderCursor(page.rows.at(-1)!);
  }
  throw new Error("more than 100 pages");
}

describe("listing orders (read table)", () => {
  it("pages through a customer's orders, a status's orders and all orders, newest first, with or without the count", async () => {
    const filters = fc.record({
      customerId: fc.constantFrom(undefined, ...CUSTOMERS, "nobody"),
      status: fc.constantFrom(undefined, null, ...STATUSES),
    });
    await fc.assert(
      fc.asyncProperty(filters, fc.integer({ min: 1, max: 7 }), fc.boolean(), async (filter, first, withCount) => {
        const want = await expected(filter);
        const got = await walk(filter, first, withCount);
        expect(got.ids).toEqual(want);
        expect(got.counts).toEqual(new Set([want.length]));
      }),
      { numRuns: 40 },
    );
    expect(await expected({ customerId: "ann" })).toHaveLength(14);
  });

  it("counts on an empty page past the last order, and with first: 0", async () => {
    const all = await orders.list({ customerId: "bob" }, 100, null, { count: true });
    const past = await orders.list({ customerId: "bob" }, 5, orderCursor(all.rows.at(-1)!), { count: true });
    expect(past).toMatchObject({ rows: [], hasNextPage: false });
    expect(await past.count()).toBe(all.rows.length);
    const none = await orders.list({ status: "PAID" }, 0, null, { count: true });
    expect(none).toMatchObject({ rows: [], hasNextPage: false });
    expect(await none.count()).toBe((await expected({ status: "PAID" })).length);
  });

  it("returns rows as a read by id does", async () => {
    const [first] = (await orders.list({ customerId: "cy" }, 1, null, { count: true })).rows;
    expect(first).toEqual(await orders.byId(first!.id));
    expect(first!.lines[0]).toMatchObject({ quantity: 1 });
    expect(first!.placedAt).toBeInstanceOf(Date);
  });

  it.each([
    ["a date that is not one", ["not a date", randomUUID()]],
    ["an id that is not a UUID", ["2026-11-01T10:00:00.000Z", "1 OR true"]],
  ])("rejects a cursor with %s as bad input", async (_what, key) => {
    const after = Buffer.from(JSON.stringify(key)).toString("base64url");
    await expect(orders.list({}, 5, after)).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });
});
