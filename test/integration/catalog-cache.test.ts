import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database, ListenHandlers, Sql } from "../../src/db/database";
import { createLogger } from "../../src/logger";
import { IDS_PER_NOTIFY, type ReadChangedMessage } from "../../src/projection/checkpoints";
import { CatalogQueries } from "../../src/query/catalog.queries";
import { CachedCatalog, CatalogCache } from "../../src/query/catalogCache";
import { OrderQueries } from "../../src/query/orders.queries";
import { ChangeFeed } from "../../src/realtime/changeFeed";
import {
  CreateProductDocument,
  PlaceOrderDocument,
  ProductDocument,
  ProductsDocument,
  RestockProductDocument,
} from "../../src/storefront/generated/graphql";
import { setupFile } from "../support/app";
import { eventually } from "../support/wait";

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile();
});
afterAll(async () => t?.teardown());

async function createProduct(sku: string, initialStock: number) {
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Cache lamp ${sku}`, priceCents: 500, initialStock },
  });
  return createProduct.product!;
}

const changed = (ids: string[], table: string | null = "products"): ReadChangedMessage => ({
  projection: "catalog",
  table,
  ids,
  txId: "1",
  position: "1",
});

/** A message of stock moves, as the catalog projection sends it for a batch that creates no product. */
const moved = (ids: string[], updated = ["available", "in_stock", "units_sold", "updated_at"]): ReadChangedMessage => ({
  ...changed(ids),
  updated,
});

/** A cache whose page lookups are recorded, in order, as "hit" / "shared" / "miss". */
function observedCache() {
  const cache = new CatalogCache(100);
  cache.listening();
  const pages: string[] = [];
  cache.observe({ onCatalogCache: (kind, outcome) => kind === "page" && pages.push(outcome) });
  return { cache, pages };
}

/** The app's database, with each statement held until the test lets it go. */
function gated(db: Database) {
  const held: Array<() => void> = [];
  const sql = {
    query: async (statement: string, params?: unknown[]) => {
      await new Promise<void>((go) => held.push(go));
      return db.sql.query(statement, params);
    },
  } as Sql;
  return { sql, held, release: () => held.splice(0).forEach((go) => go()) };
}

describe("the catalog result cache", () => {
  it("never answers a restock's mutation, or a read after it, with the row from before", async () => {
    const product = await createProduct("CACHE-1", 3);
    const search = { first: 20, filter: { search: "CACHE-1" } };
    for (let i = 0; i < 2; i++) {
      expect((await t.anonymous.ok(ProductDocument, { id: product.id })).product?.available).toBe(3);
      expect((await t.anonymous.ok(ProductsDocument, search)).products.edges[0]?.node.available).toBe(3);
    }
    expect(t.app.cache!.getRow(product.id)?.available).toBe(3);

    const { restockProduct } = await t.admin.ok(RestockProductDocument, {
      input: { productId: product.id, quantity: 4 },
    });
    expect(restockProduct.product?.available).toBe(7);
    expect((await t.anonymous.ok(ProductDocument, { id: product.id })).product?.available).toBe(7);
    expect((await t.anonymous.ok(ProductsDocument, search)).products.edges[0]?.node.available).toBe(7);
  });

  it("counts the catalog exactly as products are created, sold out and restocked", async () => {
    const totals = async (inStock?: boolean) =>
      (await t.anonymous.ok(ProductsDocument, { first: 1, filter: inStock === undefined ? null : { inStock } }))
        .products.totalCount;
    const truth = async () => {
      const [row] = await t.db.sql(
        `SELECT count(*)::int AS all, (count(*) FILTER (WHERE in_stock))::int AS stocked FROM "read"."products"`,
      );
      return row as { all: number; stocked: number };
    };
    const before = await truth();
    expect([await totals(), await totals(true), await totals(false)]).toEqual([
      before.all,
      before.stocked,
      before.all - before.stocked,
    ]);

    const empty = await createProduct("CACHE-COUNT-EMPTY", 0);
    const one = await createProduct("CACHE-COUNT-ONE", 1);
    expect([await totals(), await totals(true)]).toEqual([before.all + 2, before.stocked + 1]);

    const buyer = t.customer("cache-buyer");
    await buyer.ok(PlaceOrderDocument, {
      input: { idempotencyKey: "cache-count-order", lines: [{ productId: one.id, quantity: 1 }] },
    });
    await eventually(async () => (await totals(true)) === before.stocked, { what: "the sold-out product counted out" });
    await t.admin.ok(RestockProductDocument, { input: { productId: empty.id, quantity: 2 } });
    expect(await totals(true)).toBe(before.stocked + 1);
    const after = await truth();
    expect([await totals(), await totals(true), await totals(false)]).toEqual([
      after.all,
      after.stocked,
      after.all - after.stocked,
    ]);
  });

  it("does not store a read that began before an invalidation of what it read", async () => {
    const product = await createProduct("CACHE-RACE", 5);
    const cache = new CatalogCache(100);
    cache.listening();
    const gate = gated(t.app.db!);
    const catalog = new CachedCatalog(new CatalogQueries({ sql: gate.sql }), cache);

    const row = catalog.byId(product.id);
    const page = catalog.list({ search: "CACHE-RACE" }, 10, null, { count: true });
    await eventually(() => gate.held.length === 2, { what: "both reads sent" });
    cache.changed(changed([product.id]));
    gate.release();
    expect((await row)?.id).toBe(product.id);
    expect((await page).rows).toHaveLength(1);
    expect(cache.size).toEqual({ rows: 0, pages: 0 });

    // The same reads with nothing invalidated meanwhile are kept.
    const again = Promise.all([catalog.byId(product.id), catalog.list({ search: "CACHE-RACE" }, 10, null)]);
    await eventually(() => gate.held.length === 2, { what: "both reads sent" });
    gate.release();
    await again;
    expect(cache.size).toEqual({ rows: 1, pages: 1 });

    // A change of another product drops the pages (a filter's members may change), not this row.
    cache.changed(changed(["00000000-0000-4000-8000-000000000000"]));
    expect(cache.size).toEqual({ rows: 1, pages: 0 });
    // A message that may be one of several for a batch, or one without ids: everything.
    cache.changed(changed(Array.from({ length: IDS_PER_NOTIFY }, () => "00000000-0000-4000-8000-000000000000")));
    expect(cache.size).toEqual({ rows: 0, pages: 0 });
    const refill = catalog.byId(product.id);
    await eventually(() => gate.held.length === 1, { what: "the read sent" });
    gate.release();
    await refill;
    expect(cache.size.rows).toBe(1);
    cache.changed(changed([], null));
    expect(cache.size.rows).toBe(0);
  });

  it("keeps the pages a stock move cannot change, and drops those it can", async () => {
    const a = await createProduct("CACHE-MOVE-A", 5);
    const b = await createProduct("CACHE-MOVE-B", 5);
    const { cache, pages } = observedCache();
    const catalog = new CachedCatalog(new CatalogQueries(t.app.db!), cache);
    const read = {
      a: () => catalog.list({ search: "CACHE-MOVE-A" }, 10, null, { count: true }),
      b: () => catalog.list({ search: "CACHE-MOVE-B" }, 10, null, { count: true }),
      bInStock: () => catalog.list({ search: "CACHE-MOVE-B", inStock: true }, 10, null, { count: true }),
      both: () => catalog.list({ search: "CACHE-MOVE" }, 10, null, { count: true }),
      none: () => catalog.list({ search: "CACHE-MOVE-NOTHING" }, 10, null, { count: true }),
    };
    const readAll = async () => {
      pages.length = 0;
      for (const r of Object.values(read)) await r();
      return [...pages];
    };
    expect(await readAll()).toEqual(["miss", "miss", "miss", "miss", "miss"]);
    expect(await readAll()).toEqual(["hit", "hit", "hit", "hit", "hit"]);

    // a's stock moved: the pages that list a go, and those filtered on inStock (a may have sold out).
    cache.changed(moved([a.id]));
    expect(await readAll()).toEqual(["miss", "hit", "miss", "miss", "hit"]);
    // b's units sold changed, in_stock did not: only the pages that list b.
    cache.changed(moved([b.id.toUpperCase()], ["units_sold", "updated_at"]));
    expect(await readAll()).toEqual(["hit", "miss", "miss", "miss", "hit"]);
    // A product renamed could join or leave any page: every page goes, as for a message without `updated`.
    cache.changed(moved(["00000000-0000-4000-8000-000000000000"], ["name"]));
    expect(await readAll()).toEqual(["miss", "miss", "miss", "miss", "miss"]);
    cache.changed(changed(["00000000-0000-4000-8000-000000000000"]));
    expect(await readAll()).toEqual(["miss", "miss", "miss", "miss", "miss"]);
    expect(cache.size.pages).toBe(5);
  });

  it("does not answer or store a page from a read under way when a stock move changed a product it lists", async () => {
    const a = await createProduct("CACHE-FLIGHT-A", 5);
    await createProduct("CACHE-FLIGHT-B", 5);
    const { cache, pages } = observedCache();
    const gate = gated(t.app.db!);
    const catalog = new CachedCatalog(new CatalogQueries({ sql: gate.sql }), cache);
    const read = (search: string) => catalog.list({ search }, 10, null, { count: true });

    // Two reads under way; a's stock moves: the page listing a is answered, not stored; b's is stored.
    const first = [read("CACHE-FLIGHT-A"), read("CACHE-FLIGHT-B")];
    await eventually(() => gate.held.length === 2, { what: "both reads sent" });
    cache.changed(moved([a.id]));
    gate.release();
    expect((await Promise.all(first)).map((p) => p.rows.map((r) => r.sku))).toEqual([
      ["CACHE-FLIGHT-A"],
      ["CACHE-FLIGHT-B"],
    ]);
    expect(cache.size.pages).toBe(1);

    // A read of a's page under way, a's stock moves, then the same read: it may not take the
    // answer of the read begun before the move, so it reads again.
    pages.length = 0;
    const before = read("CACHE-FLIGHT-A");
    await eventually(() => gate.held.length === 1, { what: "the read sent" });
    cache.changed(moved([a.id]));
    const after = read("CACHE-FLIGHT-A");
    gate.release();
    await eventually(() => gate.held.length === 1, { what: "the later read sent again" });
    gate.release();
    await Promise.all([before, after]);
    expect(pages).toEqual(["miss", "shared"]);
    // Its own read began after the move: stored.
    expect(cache.size.pages).toBe(2);
  });

  it("shows every cached page as the projection changes it: stock moved, sold out, a product created", async () => {
    const x = await createProduct("CACHE-LIVE-X", 5);
    const y = await createProduct("CACHE-LIVE-Y", 1);
    const page = async (inStock?: boolean) => {
      const { products } = await t.anonymous.ok(ProductsDocument, {
        first: 10,
        filter: { search: "CACHE-LIVE", ...(inStock === undefined ? {} : { inStock }) },
      });
      return { rows: products.edges.map((e) => [e.node.sku, e.node.available]), total: products.totalCount };
    };
    for (let i = 0; i < 2; i++) {
      expect(await page()).toEqual({
        rows: [
          ["CACHE-LIVE-X", 5],
          ["CACHE-LIVE-Y", 1],
        ],
        total: 2,
      });
      expect(await page(true)).toEqual({
        rows: [
          ["CACHE-LIVE-X", 5],
          ["CACHE-LIVE-Y", 1],
        ],
        total: 2,
      });
    }

    await t.admin.ok(RestockProductDocument, { input: { productId: x.id, quantity: 3 } });
    expect(await page()).toEqual({
      rows: [
        ["CACHE-LIVE-X", 8],
        ["CACHE-LIVE-Y", 1],
      ],
      total: 2,
    });

    // placeOrder waits, within a bound, for the projections it changes: polled, in case that ran out.
    await t.customer("cache-live").ok(PlaceOrderDocument, {
      input: { idempotencyKey: "cache-live-order", lines: [{ productId: y.id, quantity: 1 }] },
    });
    await eventually(async () => (await page(true)).total === 1, { what: "the sold-out product gone from in stock" });
    expect(await page(true)).toEqual({ rows: [["CACHE-LIVE-X", 8]], total: 1 });
    expect(await page()).toEqual({
      rows: [
        ["CACHE-LIVE-X", 8],
        ["CACHE-LIVE-Y", 0],
      ],
      total: 2,
    });

    await createProduct("CACHE-LIVE-Z", 2);
    expect(await page()).toEqual({
      rows: [
        ["CACHE-LIVE-X", 8],
        ["CACHE-LIVE-Y", 0],
        ["CACHE-LIVE-Z", 2],
      ],
      total: 3,
    });
  });

  it("answers every read begun after a change was announced with rows at least that new, under random interleavings", async () => {
    // A model of the shop: products whose stock moves (in_stock flipping at times) and products
    // created, written to read.products by SQL, each change announced to the cache after a random
    // delay, as the change feed would; readers meanwhile, through statements held for random
    // delays. Every answer must be the rows of one state of the table between the last change
    // announced when the read began and the last written when it ended.
    const seed = 1 + (Date.now() % 100_000);
    let state = seed;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    const pause = () =>
      new Promise<void>((go) => (random() < 0.5 ? setImmediate(go) : setTimeout(go, Math.floor(random() * 4))));
    const db = t.app.db!;

    type Snapshot = Map<string, { name: string; sku: string; available: number }>;
    const first = await Promise.all(
      [3, 0, 1, 7].map(async (stock, i) => {
        const { createProduct } = await t.admin.ok(CreateProductDocument, {
          input: { sku: `MODEL-${i}`, name: `Model lamp ${i}`, priceCents: 100, initialStock: stock },
        });
        return createProduct.product!;
      }),
    );
    const versions: Snapshot[] = [
      new Map(first.map((p) => [p.id, { name: p.name, sku: p.sku, available: p.available }])),
    ];
    let announced = 0;
    // Set when the changes end, or a reader fails: everything else then stops.
    let done = false;

    const { cache, pages: lookups } = observedCache();
    const held = {
      query: async (statement: string, params?: unknown[]) => {
        await pause();
        const rows = await db.sql.query(statement, params);
        await pause();
        return rows;
      },
    } as Sql;
    const catalog = new CachedCatalog(new CatalogQueries({ sql: held }), cache);

    const changes = (async () => {
      for (let k = 0; k < 150 && !done; k++) {
        const now = new Map(versions.at(-1)!);
        let write: () => Promise<unknown>;
        let message: ReadChangedMessage;
        if (random() < 0.15) {
          const n = now.size;
          const id = randomUUID();
          now.set(id, { name: `Model lamp ${n}`, sku: `MODEL-${n}`, available: n % 3 });
          write = () =>
            db.sql.query(
              `INSERT INTO "read"."products" (id, sku, name, description, price_cents, available, in_stock, units_sold, created_at, updated_at, applied_tx, applied_pos)
               SELECT $1, $2, $3, NULL, 100, $4, $4 > 0, 0, now(), now(), applied_tx, applied_pos FROM "read"."products" WHERE id = $5`,
              [id, `MODEL-${n}`, `Model lamp ${n}`, n % 3, first[0]!.id],
            );
          message = changed([id]);
        } else {
          const ids = [...now.keys()];
          const id = ids[Math.floor(random() * ids.length)]!;
          const available = Math.max(0, now.get(id)!.available + Math.floor(random() * 5) - 2);
          now.set(id, { ...now.get(id)!, available });
          write = () =>
            db.sql.query(`UPDATE "read"."products" SET available = $2, in_stock = $2 > 0 WHERE id = $1`, [
              id,
              available,
            ]);
          message = moved([id]);
        }
        // A state counts from the moment its write is sent (a read may see it from its commit on).
        versions.push(now);
        const version = versions.length - 1;
        await write();
        await pause();
        cache.changed(message);
        announced = version;
      }
    })().finally(() => (done = true));

    const pageAt = (v: number, inStock: boolean | undefined, take: number) => {
      const rows = [...versions[v]!.values()]
        .filter((p) => inStock === undefined || p.available > 0 === inStock)
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      return {
        rows: rows.slice(0, take).map((p) => `${p.sku}:${p.available}`),
        hasNextPage: rows.length > take,
        count: rows.length,
      };
    };
    let reads = 0;
    const reader = async () => {
      while (!done) {
        // A cache hit resolves without I/O: yield, or readers hitting it would starve the changes.
        await pause();
        const inStock = [undefined, true, false][Math.floor(random() * 3)];
        const take = 1 + Math.floor(random() * 4);
        const from = announced;
        const page = await catalog.list({ search: "model lamp", inStock }, take, null, { count: true });
        const to = versions.length - 1;
        const got = {
          rows: page.rows.map((r) => `${r.sku}:${r.available}`),
          hasNextPage: page.hasNextPage,
          count: await page.count(),
        };
        const states = Array.from({ length: to - from + 1 }, (_, i) => from + i);
        expect(
          states.some((v) => JSON.stringify(pageAt(v, inStock, take)) === JSON.stringify(got)),
          `seed ${seed}: ${JSON.stringify({ inStock, take, got })} is no state from ${from} to ${to}`,
        ).toBe(true);
        reads++;
      }
    };

    const readers = Array.from({ length: 4 }, () =>
      reader().catch((error: unknown) => {
        done = true;
        throw error;
      }),
    );
    await Promise.all([changes, ...readers]);
    expect(reads).toBeGreaterThan(150);
    // The answers came from the cache too, and from reads under way shared, not only from Postgres.
    expect(lookups.filter((o) => o === "hit").length).toBeGreaterThan(10);
    expect(lookups).toContain("shared");
  });

  it("shares a page read under way with the same reads after it, unless something changed since it began", async () => {
    await createProduct("CACHE-SHARE", 5);
    const cache = new CatalogCache(100);
    cache.listening();
    const gate = gated(t.app.db!);
    const catalog = new CachedCatalog(new CatalogQueries({ sql: gate.sql }), cache);
    const read = () => catalog.list({ search: "CACHE-SHARE" }, 10, null, { count: true });

    const first = read();
    await eventually(() => gate.held.length === 1, { what: "the read sent" });
    const second = read();
    cache.changed(changed(["00000000-0000-4000-8000-000000000000"]));
    const third = read();
    await eventually(() => gate.held.length === 2, { what: "the read after the change sent" });
    gate.release();
    const pages = await Promise.all([first, second, third]);
    expect(pages.map((p) => p.rows.map((r) => r.sku))).toEqual([["CACHE-SHARE"], ["CACHE-SHARE"], ["CACHE-SHARE"]]);
    expect(await Promise.all(pages.map((p) => p.count()))).toEqual([1, 1, 1]);
    expect(gate.held).toHaveLength(0);
  });

  it("holds at most its size in rows, a page weighing its rows", async () => {
    for (const n of [1, 2, 3]) await createProduct(`CACHE-SIZE-${n}`, 5);
    const cache = new CatalogCache(2);
    cache.listening();
    const catalog = new CachedCatalog(new CatalogQueries(t.app.db!), cache);
    await catalog.list({ search: "CACHE-SIZE" }, 10, null);
    expect(cache.size.pages).toBe(0);
    await catalog.list({ search: "CACHE-SIZE-1" }, 10, null);
    await catalog.list({ search: "CACHE-SIZE-2" }, 10, null);
    await catalog.list({ search: "CACHE-SIZE-3" }, 10, null);
    expect(cache.size.pages).toBe(2);
  });

  it("stores nothing read where the last invalidation may not have arrived (a lagging replica)", async () => {
    const product = await createProduct("CACHE-REPLICA", 5);
    const cache = new CatalogCache(100);
    cache.listening();
    let replicaHasIt = false;
    const catalog = new CachedCatalog(new CatalogQueries(t.app.db!), cache, () => replicaHasIt);
    await catalog.byId(product.id);
    expect(cache.size.rows).toBe(0);
    replicaHasIt = true;
    await catalog.byId(product.id);
    expect(cache.size.rows).toBe(1);
  });

  it("is emptied when LISTEN is lost, and stores nothing until it is back", async () => {
    const product = await createProduct("CACHE-LISTEN", 5);
    let handlers: ListenHandlers | undefined;
    const db: Database = { ...t.app.db!, listen: async (_c, h) => ((handlers = h), { close: async () => undefined }) };
    const cache = new CatalogCache(100);
    const feed = new ChangeFeed(db, new CatalogQueries(db), new OrderQueries(db), createLogger("silent"), cache);
    const catalog = new CachedCatalog(new CatalogQueries(db), cache);
    expect(cache.enabled).toBe(false);
    await feed.start();
    try {
      await catalog.byId(product.id);
      expect(cache.size.rows).toBe(1);

      handlers!.onLost!(new Error("connection lost"));
      expect(cache.size.rows).toBe(0);
      await catalog.byId(product.id);
      expect(cache.size.rows).toBe(0);

      handlers!.onReconnect!();
      await catalog.byId(product.id);
      expect(cache.size.rows).toBe(1);
    } finally {
      await feed.stop();
    }
    expect(cache.enabled).toBe(false);
  });

  it("invalidates before the change feed wakes a mutation waiting for its write", async () => {
    let handlers: ListenHandlers | undefined;
    const db: Database = { ...t.app.db!, listen: async (_c, h) => ((handlers = h), { close: async () => undefined }) };
    const cache = new CatalogCache(100);
    const feed = new ChangeFeed(db, new CatalogQueries(db), new OrderQueries(db), createLogger("silent"), cache);
    await feed.start();
    try {
      const id = "00000000-0000-4000-8000-0000000000aa";
      const catalog = new CachedCatalog(new CatalogQueries(db), cache);
      await catalog.byId(id);
      expect(cache.getRow(id)).toBeNull();
      const at = feed.checkpoint("catalog");
      const target = { txId: at.txId + 1000n, position: 1n };
      const sawRowOnWake = feed
        .waitFor("catalog", target, 5000)
        .then((reached) => ({ reached, cached: cache.getRow(id) }));
      handlers!.onNotify(
        "read_changed",
        JSON.stringify({ ...changed([id]), txId: target.txId.toString(), position: "1" }),
      );
      expect(await sawRowOnWake).toEqual({ reached: true, cached: undefined });
    } finally {
      await feed.stop();
    }
  });
});
