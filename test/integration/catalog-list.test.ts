import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database";
import { openPostgres } from "../../src/db/postgres";
import { CatalogQueries, SEARCH_KEY, containsPattern, productCursor } from "../../src/query/catalog.queries";
import { freshDatabase, type TestDatabase } from "../support/db";

// CatalogQueries.list() against a migrated database whose catalog table is filled directly (the
// query side is what is tested here, not the projection), compared with the plain definition of
// the filter: `name ILIKE %term% OR sku ILIKE %term%` (wildcards in the term taken literally),
// and inStock, in (name, id) order.

let tdb: TestDatabase;
let db: Database;
let catalog: CatalogQueries;
const rows: { name: string; sku: string }[] = [];

/** Names that test case folding, LIKE's special characters, line breaks and ties on the name. */
const NAMES = [
  "Blue Teapot",
  "blue teapot",
  "BLUE TEAPOT",
  "Red Teapot",
  "Teacup",
  "Äpfel-Saft",
  "äpfel mus",
  "Straße",
  "STRASSE",
  "100% Cotton",
  "100 Cotton",
  "snake_case lamp",
  "snakeXcase lamp",
  "back\\slash",
  "two\nlines",
  "two lines",
  "Tab\tbed",
  "Ünïcödé ☕ mug",
  "Same name",
  "Same name",
  "Same name",
  "x",
  "%",
  "_",
  "\\",
];

beforeAll(async () => {
  tdb = await freshDatabase();
  db = openPostgres(tdb.url, 3);
  catalog = new CatalogQueries(db);
  let n = 0;
  for (const name of NAMES) {
    n += 1;
    // Every third is out of stock; the sku carries text of its own to match on.
    const sku = `SKU-${String(n).padStart(3, "0")}-${n % 4 === 0 ? "Lamp" : n % 5 === 0 ? "50%_off" : "plain"}`;
    rows.push({ name, sku });
    await tdb.sql(
      `INSERT INTO "read"."products" (id, sku, name, description, price_cents, available, in_stock, units_sold, created_at, updated_at, applied_tx, applied_pos, row_key)
       VALUES ($1, $2, $3, NULL, 100, $4, $4 > 0, 0, now(), now(), '1'::xid8, $5, "read".row_key($1))`,
      [randomUUID(), sku, name, n % 3 === 0 ? 0 : 10, n],
    );
  }
  // What the catalog projection keeps with the rows (the count of a page that does not search).
  await tdb.sql(
    `UPDATE "read"."catalog_counts" SET products = (SELECT count(*) FROM "read"."products"),
            in_stock = (SELECT count(*) FROM "read"."products" WHERE in_stock)`,
  );
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

/** The ids the filter means, by its plain definition, in page order. */
async function expected(search: string | undefined, inStock: boolean | undefined): Promise<string[]> {
  const term = search?.trim();
  const rows = await tdb.sql<{ id: string }>(
    `SELECT id::text AS id FROM "read"."products"
      WHERE ($1::text IS NULL OR name ILIKE $1 OR sku ILIKE $1) AND ($2::boolean IS NULL OR in_stock = $2)
      ORDER BY name, id`,
    [term ? containsPattern(term) : null, inStock ?? null],
  );
  return rows.map((r) => r.id);
}

/** Every page, following the cursors, with or without the count. */
async function walk(search: string | undefined, inStock: boolean | undefined, first: number, withCount: boolean) {
  const ids: string[] = [];
  const counts: number[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await catalog.list({ search, inStock }, first, after, { count: withCount });
    ids.push(...page.rows.map((r) => r.id));
    counts.push(await page.count());
    expect(page.rows.length).toBeLessThanOrEqual(first);
    if (!page.hasNextPage) return { ids, counts };
    expect(page.rows).toHaveLength(first);
    after = productCursor(page.rows.at(-1)!);
  }
  throw new Error("more than 100 pages");
}

describe("listing the catalog (read table)", () => {
  it("finds by name or sku, case-insensitively, anywhere in them, page after page", async () => {
    for (const [search, inStock] of [
      ["teapot", undefined],
      ["TEAPOT", true],
      ["lamp", undefined],
      ["lamp", false],
      ["äPFEL", undefined],
      ["sku-0", true],
      [undefined, true],
      [undefined, undefined],
    ] as const) {
      const want = await expected(search, inStock);
      for (const withCount of [true, false]) {
        const got = await walk(search, inStock, 4, withCount);
        expect(got.ids, `${search} ${inStock} count=${withCount}`).toEqual(want);
        expect(new Set(got.counts), `${search} ${inStock} count=${withCount}`).toEqual(new Set([want.length]));
      }
    }
    // The searches above did find something, in and out of stock.
    expect(await expected("teapot", undefined)).toHaveLength(4);
    expect((await expected("lamp", false)).length).toBeGreaterThan(0);
  });

  it("takes %, _ and \\ in a search literally", async () => {
    const found = async (search: string) => {
      const page = await catalog.list({ search }, 100, null, { count: true });
      return { skus: page.rows.map((r) => r.sku).sort(), total: await page.count() };
    };
    const containing = (text: string) => {
      const skus = rows
        .filter((r) => r.name.toLowerCase().includes(text) || r.sku.toLowerCase().includes(text))
        .map((r) => r.sku)
        .sort();
      return { skus, total: skus.length };
    };
    for (const search of ["100%", "%", "%_", "e_c", "_", "\\", "k\\s"]) {
      expect(await found(search), search).toEqual(containing(search));
      expect(containing(search).total, search).toBeGreaterThan(0);
    }
    expect((await found("e_c")).skus).toHaveLength(1); // snake_case, not snakeXcase
    expect(await found("no such thing")).toEqual({ skus: [], total: 0 });
  });

  it("matches a search with a line break exactly, not across the name and the sku", async () => {
    const page = await catalog.list({ search: "two\nl" }, 10, null, { count: true });
    expect(page.rows.map((r) => r.name)).toEqual(["two\nlines"]);
    // the end of a name and the start of its sku, joined by a line break, are no match
    const joined = await catalog.list({ search: "teapot\nsku" }, 10, null, { count: true });
    expect(joined.rows).toEqual([]);
    expect(await joined.count()).toBe(0);
  });

  it("keeps rows with the same name apart by id, across pages", async () => {
    const want = await expected("same name", undefined);
    expect(want).toHaveLength(3);
    expect((await walk("same name", undefined, 1, true)).ids).toEqual(want);
  });

  it("counts every match on every page, also on an empty page past the last row", async () => {
    const all = await catalog.list({ search: "teapot" }, 100, null, { count: true });
    const last = productCursor(all.rows.at(-1)!);
    const past = await catalog.list({ search: "teapot" }, 10, last, { count: true });
    expect(past).toMatchObject({ rows: [], hasNextPage: false });
    expect(await past.count()).toBe(4);
    const none = await catalog.list({}, 0, null, { count: true });
    expect(none).toMatchObject({ rows: [], hasNextPage: false });
    expect(await none.count()).toBe(NAMES.length);
    expect(await (await catalog.list({ inStock: true }, 0, null)).count()).toBe(
      (await expected(undefined, true)).length,
    );
  });

  it("returns rows as the other reads do", async () => {
    const [fromList] = (await catalog.list({ search: "Äpfel-Saft" }, 1, null, { count: true })).rows;
    expect(fromList).toEqual(await catalog.byId(fromList!.id));
    expect(fromList!.updatedAt).toBeInstanceOf(Date);
  });

  it("rejects a cursor whose id is not a UUID as bad input", async () => {
    const forged = Buffer.from(JSON.stringify(["Blue Teapot", "not-a-uuid"])).toString("base64url");
    await expect(catalog.list({}, 10, forged)).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });

  it("answers any search as the plain ILIKE does", async () => {
    const pieces = [...NAMES, "SKU-", "lamp", "50%_off", "plain"].flatMap((s) => [s, s.toUpperCase(), s.slice(1, 4)]);
    const term = fc.oneof(
      fc.constantFrom(...pieces),
      fc.string({
        unit: fc.constantFrom("a", "E", "ä", "%", "_", "\\", "\n", " ", "-", "0", "1", "ß", "S"),
        maxLength: 4,
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        term,
        fc.constantFrom(undefined, true, false),
        fc.integer({ min: 1, max: 6 }),
        fc.boolean(),
        async (search, inStock, first, withCount) => {
          const want = await expected(search, inStock);
          const got = await walk(search, inStock, first, withCount);
          expect(got.ids).toEqual(want);
          expect(new Set(got.counts)).toEqual(new Set([want.length]));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("the trigram index on the catalog", () => {
  it("serves the search expression the queries use", async () => {
    const session = await db.openSession();
    try {
      // A table this small is read whole either way; forbid that to see what the index covers.
      await session.exec("SET enable_seqscan = off");
      const plan = await session.query<{ "QUERY PLAN": string }>(
        `EXPLAIN SELECT id FROM "read"."products" WHERE (${SEARCH_KEY}) LIKE lower($1)`,
        ["%teapot%"],
      );
      expect(plan.map((r) => r["QUERY PLAN"]).join("\n")).toContain("read_products_search_idx");
    } finally {
      await session.close();
    }
  });
});
