import { print } from "graphql";
import { ProductsDocument } from "../../../src/storefront/generated/graphql";
import { createBenchDatabase, SEARCH_TERMS, seedProducts, waitForProjections } from "./database";
import { closedLoop } from "./load";
import type { Bench, Server, SubscriptionResult } from "./phases";
import { round, summarize } from "./stats";

type StartServer = (name: string, script: string, env?: Record<string, string>) => Promise<Server>;

/** One number of subscribers, each restock pushed to every one of them. */
export interface SubscriberPoint {
  size: number;
  p50Ms: number;
  p99Ms: number;
  delivered: number;
  expected: number;
  cpuMsPer1000Pushes: number | null;
  rssKbPerSubscriber: number | null;
}

export const subscriberPoint = (size: number, r: SubscriptionResult): SubscriberPoint => ({
  size,
  p50Ms: r.p50,
  p99Ms: r.p99,
  delivered: r.delivered,
  expected: r.expectedDeliveries,
  cpuMsPer1000Pushes: r.cpuMsPer1000Pushes ?? null,
  rssKbPerSubscriber: r.rssKbPerSubscriber ?? null,
});

/** One size of the catalog: `products(first: 20, filter)` as a search, and as a plain page. */
export interface CatalogPoint {
  size: number;
  /** The search (a word of the names, in stock only): p99 and requests/s. */
  p99Ms: number;
  perSecond: number;
  /** A plain first page (no filter). */
  pageP99Ms: number;
  pagePerSecond: number;
  /** The same search without totalCount: what counting the matches costs. */
  searchWithoutCountP99Ms: number;
  searchWithoutCountPerSecond: number;
}

const PRODUCTS = print(ProductsDocument);
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

/**
 * How a catalog query's cost grows with the catalog: one database of its own, grown in steps to
 * each size (products seeded with SQL as createProduct makes them, then projected), the same
 * server measuring both queries at each, 16 clients.
 */
export async function catalogCurve(
  bench: Bench,
  startServer: StartServer,
  stopServer: (server: Server) => Promise<void>,
  sizes: number[],
): Promise<CatalogPoint[]> {
  const db = await createBenchDatabase();
  const server = await startServer("server (catalog sizes)", "src/main.ts", { DATABASE_URL: db.url });
  const points: CatalogPoint[] = [];
  try {
    let seeded = 0;
    for (const size of sizes) {
      await seedProducts(db.pool, size - seeded, seeded);
      seeded = size;
      await waitForProjections(db.pool);
      await db.pool.query(`ANALYZE "read".products`);
      const run = async (body: (n: number) => string) => {
        const result = await closedLoop({
          concurrency: bench.settings.readConcurrency,
          warmupMs: bench.settings.warmupMs,
          durationMs: bench.settings.readMs,
          task: async (n) => {
            const res = await server.gql.post(body(n));
            if (res.status !== 200 || res.errors?.length)
              throw new Error(`products failed (${res.status}): ${JSON.stringify(res.errors)}`);
          },
        });
        if (result.errors > 0) throw new Error(`catalog curve: ${result.errors} errors, first: ${result.firstError}`);
        return { perSecond: round(result.perSecond, 0), ...summarize(result.latencies) };
      };
      const searched = await run(search);
      const paged = await run(() => page);
      const uncounted = await run(searchWithoutCount);
      points.push({
        size,
        p99Ms: searched.p99,
        perSecond: searched.perSecond,
        pageP99Ms: paged.p99,
        pagePerSecond: paged.perSecond,
        searchWithoutCountP99Ms: uncounted.p99,
        searchWithoutCountPerSecond: uncounted.perSecond,
      });
      bench.log(
        `  ${size} products: search p99 ${searched.p99} ms at ${searched.perSecond}/s; page p99 ${paged.p99} ms at ${paged.perSecond}/s; search without totalCount p99 ${uncounted.p99} ms at ${uncounted.perSecond}/s`,
      );
    }
  } finally {
    await stopServer(server);
    await db.drop();
  }
  return points;
}
