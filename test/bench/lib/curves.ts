import { print } from "graphql";
import { ProductDocument, ProductsDocument } from "../../../src/storefront/generated/graphql";
import { createBenchDatabase, SEARCH_TERMS, seedProducts, stockedProducts, waitForProjections } from "./database";
import { scrapeMetrics } from "./http";
import { closedLoop, openLoop } from "./load";
import { placeOrderBody, type Bench, type Server, type SubscriptionResult, type StartServer } from "./phases";
import { round, summarize } from "./stats";
import { SERVER } from "./processes";

/** One number of subscribers, each restock pushed to every one of them. */
export interface SubscriberPoint {
  size: number;
  p50Ms: number;
  p99Ms: number;
  delivered: number;
  expected: number;
  cpuMsPer1000Pushes: number | null;
  rssKbPerSubscriber: number | null;
  /** The server's heap after a full GC, per subscriber connected (KB; an untimed round on a server with an inspector). */
  heapKbPerSubscriber: number | null;
}

export const subscriberPoint = (
  size: number,
  r: SubscriptionResult,
  heapKbPerSubscriber: number | null,
): SubscriberPoint => ({
  size,
  p50Ms: r.p50,
  p99Ms: r.p99,
  delivered: r.delivered,
  expected: r.expectedDeliveries,
  cpuMsPer1000Pushes: r.cpuMsPer1000Pushes ?? null,
  rssKbPerSubscriber: r.rssKbPerSubscriber ?? null,
  heapKbPerSubscriber,
});

/** One read at one size: p99 and requests/s over the closed loop. */
export interface CatalogRead {
  p99Ms: number;
  perSecond: number;
}

/** The catalog reads measured at each size, on one server. */
export interface CatalogReads {
  /** The search (a word of the names, in stock only), with totalCount. */
  search: CatalogRead;
  /** A plain first page (no filter), with totalCount. */
  page: CatalogRead;
  /** The same search without totalCount: what counting the matches costs. */
  searchWithoutCount: CatalogRead;
  /** One product by id (a different one each request, from the first 1,000). */
  byId: CatalogRead;
}

/**
 * The reads of a shop taking orders: orders placed at `ordersPerSecond` (through the server that
 * projects) while a server with the result cache on, that does not, serves the reads. Each order
 * moves one product's stock, and the cache drops what that move may change.
 */
/** A read under writes, and the share of its page lookups the result cache answered (hit or shared; warm-up included). */
export interface CatalogReadUnderWrites extends CatalogRead {
  pageHitRatio: number;
}

export interface CatalogReadsUnderWrites {
  /** Orders placed a second while the reads ran (offered: ORDERS_PER_SECOND, at most 64 in flight). */
  ordersPerSecond: number;
  /** Orders not sent for having 64 in flight. */
  ordersSkipped: number;
  /** The storefront's search: a word of the names, any stock, with totalCount. */
  search: CatalogReadUnderWrites;
  /** A plain first page, with totalCount. */
  page: CatalogReadUnderWrites;
  /** The search in stock only (CatalogReads' search), which any stock move may change. */
  searchInStock: CatalogReadUnderWrites;
}

/**
 * One size of the catalog: `products(first: 20, filter)` as a search, and as a plain page, and
 * `product(id)`, on a server as shipped (its result cache on, warm: the curve reads without
 * writes) and on one with the cache off (CATALOG_RESULT_CACHE_ENTRIES=0: the query plans' work);
 * then the searches and the page under a stream of orders.
 */
export interface CatalogPoint {
  size: number;
  /** As shipped (the fields of earlier runs keep their names). */
  p99Ms: number;
  perSecond: number;
  pageP99Ms: number;
  pagePerSecond: number;
  searchWithoutCountP99Ms: number;
  searchWithoutCountPerSecond: number;
  cached: CatalogReads;
  uncached: CatalogReads;
  underWrites: CatalogReadsUnderWrites;
  /** The same, on the server of `--baseline` (the code before a change). */
  underWritesBaseline?: CatalogReadsUnderWrites;
}

/** Orders a second placed while the reads under writes are measured: a busy shop, well under the write ceiling. */
export const ORDERS_PER_SECOND = 100;

const PRODUCTS = print(ProductsDocument);
const storefrontSearch = (n: number) =>
  JSON.stringify({
    query: PRODUCTS,
    variables: { first: 20, filter: { search: SEARCH_TERMS[n % SEARCH_TERMS.length] } },
  });
const search = (n: number) =>
  JSON.stringify({
    query: PRODUCTS,
    variables: { first: 20, filter: { search: SEARCH_TERMS[n % SEARCH_TERMS.length], inStock: true } },
  });
const page = JSON.stringify({ query: PRODUCTS, variables: { first: 20 } });
const PRODUCTS_WITHOUT_COUNT = PRODUCTS.replace(/\btotalCount\b/, "");
const searchWithoutCount = (n: number) =>
  JSON.stringify({
    query: PRODUCTS_WITHOUT_COUNT,
    variables: { first: 20, filter: { search: SEARCH_TERMS[n % SEARCH_TERMS.length], inStock: true } },
  });

const PRODUCT = print(ProductDocument);
const byId = (ids: string[]) => (n: number) =>
  JSON.stringify({ query: PRODUCT, variables: { id: ids[n % ids.length] } });

/**
 * How a catalog query's cost grows with the catalog: one database of its own, grown in steps to
 * each size (products seeded with SQL as createProduct makes them, then projected), two servers
 * on it (result cache on and off) measuring each read at each size, 16 clients. Then, with orders
 * placed through the first, a third server (cache on, no projector) measures the reads under
 * writes, and with `startBaseline` the server of another checkout in the same role.
 */
export async function catalogCurve(
  bench: Bench,
  startServer: StartServer,
  stopServer: (server: Server) => Promise<void>,
  sizes: number[],
  startBaseline?: (name: string, env: Record<string, string>) => Promise<Server>,
): Promise<CatalogPoint[]> {
  const db = await createBenchDatabase();
  // It also takes the orders of the reads under writes: answered at commit, without waiting for the projection.
  const cachedServer = await startServer("server (catalog sizes)", SERVER, {
    DATABASE_URL: db.url,
    MUTATIONS_PER_SECOND: "0",
    MUTATION_CONCURRENCY: "0",
    READ_YOUR_WRITES_TIMEOUT_MS: "0",
  });
  const uncachedServer = await startServer("server (catalog sizes, no result cache)", SERVER, {
    DATABASE_URL: db.url,
    CATALOG_RESULT_CACHE_ENTRIES: "0",
    RUN_PROJECTOR: "false",
  });
  const readerEnv = { DATABASE_URL: db.url, RUN_PROJECTOR: "false" };
  const reader = await startServer("server (catalog sizes, reads under writes)", SERVER, readerEnv);
  const baselineReader = await startBaseline?.("server (catalog sizes, reads under writes, baseline)", readerEnv);
  const points: CatalogPoint[] = [];
  try {
    let seeded = 0;
    for (const size of sizes) {
      await seedProducts(db.pool, size - seeded, seeded);
      seeded = size;
      await waitForProjections(db.pool);
      await db.pool.query(`ANALYZE "read".products`);
      // The seed's dirty pages written out now, not by a timed checkpoint in the middle of a read.
      await db.pool.query("CHECKPOINT");
      const { rows } = await db.pool.query<{ id: string }>(
        `SELECT id::text AS id FROM "read".products ORDER BY sku LIMIT 1000`,
      );
      const ids = rows.map((r) => r.id);
      const run = async (server: Server, body: (n: number) => string): Promise<CatalogRead> => {
        const result = await closedLoop({
          concurrency: bench.settings.readConcurrency,
          warmupMs: bench.settings.warmupMs,
          durationMs: bench.settings.readMs,
          task: async (n) => {
            const res = await server.gql.post(body(n));
            if (res.status !== 200 || res.errors?.length)
              throw new Error(`catalog read failed (${res.status}): ${JSON.stringify(res.errors)}`);
          },
        });
        if (result.errors > 0) throw new Error(`catalog curve: ${result.errors} errors, first: ${result.firstError}`);
        return { p99Ms: summarize(result.latencies).p99, perSecond: round(result.perSecond, 0) };
      };
      const reads = async (server: Server): Promise<CatalogReads> => ({
        search: await run(server, search),
        page: await run(server, () => page),
        searchWithoutCount: await run(server, searchWithoutCount),
        byId: await run(server, byId(ids)),
      });
      const cached = await reads(cachedServer);
      const uncached = await reads(uncachedServer);
      const products = await stockedProducts(db.pool);
      const runCounted = async (server: Server, body: (n: number) => string): Promise<CatalogReadUnderWrites> => {
        const lookups = async () => {
          const metrics = await scrapeMetrics(server.url);
          const of = (result: string) =>
            metrics.get(`shop_catalog_cache_lookups_total{kind="page",result="${result}"}`) ?? 0;
          return { answered: of("hit") + of("shared"), all: of("hit") + of("shared") + of("miss") };
        };
        const before = await lookups();
        const read = await run(server, body);
        const after = await lookups();
        const pageHitRatio = round((after.answered - before.answered) / Math.max(1, after.all - before.all), 3);
        return { ...read, pageHitRatio };
      };
      const readsUnderWrites = async (server: Server): Promise<CatalogReadsUnderWrites> => {
        const stop = new AbortController();
        const started = performance.now();
        const orders = openLoop({
          ratePerSecond: ORDERS_PER_SECOND,
          durationMs: 3_600_000, // in fact until the reads end (stop)
          maxInFlight: 64,
          signal: stop.signal,
          task: async (n) => {
            const res = await cachedServer.gql.post(
              placeOrderBody(products, n),
              bench.customerTokens[n % bench.customerTokens.length],
            );
            if (res.status !== 200 || res.errors?.length)
              throw new Error(`placeOrder failed (${res.status}): ${JSON.stringify(res.errors)}`);
          },
        });
        const measured = await Promise.allSettled([
          (async () => ({
            search: await runCounted(server, storefrontSearch),
            page: await runCounted(server, () => page),
            searchInStock: await runCounted(server, search),
          }))().finally(() => stop.abort()),
          orders,
        ]);
        const [measuredReads, placed] = measured;
        if (measuredReads.status === "rejected") throw measuredReads.reason;
        if (placed.status === "rejected") throw placed.reason;
        const { sent, errors, skipped, firstError } = placed.value;
        if (errors > 0) throw new Error(`orders under the catalog reads: ${errors} failed, first: ${firstError}`);
        const ordersPerSecond = round(sent / ((performance.now() - started) / 1000), 0);
        return { ordersPerSecond, ordersSkipped: skipped, ...measuredReads.value };
      };
      const underWrites = await readsUnderWrites(reader);
      const underWritesBaseline = baselineReader && (await readsUnderWrites(baselineReader));
      points.push({
        size,
        p99Ms: cached.search.p99Ms,
        perSecond: cached.search.perSecond,
        pageP99Ms: cached.page.p99Ms,
        pagePerSecond: cached.page.perSecond,
        searchWithoutCountP99Ms: cached.searchWithoutCount.p99Ms,
        searchWithoutCountPerSecond: cached.searchWithoutCount.perSecond,
        cached,
        uncached,
        underWrites,
        ...(underWritesBaseline && { underWritesBaseline }),
      });
      const line = (r: CatalogReads) =>
        `search p99 ${r.search.p99Ms} ms at ${r.search.perSecond}/s; page p99 ${r.page.p99Ms} ms at ${r.page.perSecond}/s; search without totalCount p99 ${r.searchWithoutCount.p99Ms} ms at ${r.searchWithoutCount.perSecond}/s; by id p99 ${r.byId.p99Ms} ms at ${r.byId.perSecond}/s`;
      bench.log(`  ${size} products, result cache on: ${line(cached)}`);
      bench.log(`  ${size} products, result cache off: ${line(uncached)}`);
      const writesLine = (r: CatalogReadsUnderWrites) =>
        `${r.ordersPerSecond} orders/s (${r.ordersSkipped} skipped); search p99 ${r.search.p99Ms} ms at ${r.search.perSecond}/s (cache answered ${r.search.pageHitRatio}); page p99 ${r.page.p99Ms} ms at ${r.page.perSecond}/s (${r.page.pageHitRatio}); search in stock p99 ${r.searchInStock.p99Ms} ms at ${r.searchInStock.perSecond}/s (${r.searchInStock.pageHitRatio})`;
      bench.log(`  ${size} products, under writes: ${writesLine(underWrites)}`);
      if (underWritesBaseline)
        bench.log(`  ${size} products, under writes, baseline: ${writesLine(underWritesBaseline)}`);
    }
  } finally {
    if (baselineReader) await stopServer(baselineReader);
    await stopServer(reader);
    await stopServer(uncachedServer);
    await stopServer(cachedServer);
    await db.drop();
  }
  return points;
}
