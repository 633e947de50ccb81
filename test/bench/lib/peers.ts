import { readlinkSync, realpathSync } from "node:fs";
import { freePort } from "../../support/ports";
import { SEARCH_TERMS, waitForProjections } from "./database";
import { HttpGraphQL, type GraphQLResult } from "./http";
import { closedLoop, type LoadResult } from "./load";
import { node22 } from "./node22";
import { runSummary, type Bench, type RunSummary, type Server } from "./phases";
import { SERVER, type PhaseMemory } from "./processes";
import { round } from "./stats";

// Our catalog reads (read tables, src/main.ts) side by side with PostGraphile v5 serving the same
// catalog from the write tables (test/bench/postgraphileServer.ts), both on Node 22, on the same
// database in the same run: a page of 20 by name, a search (case-insensitive substring of name or
// sku, in stock only), and one product by id (over the whole catalog, and over a hot 1,000). Both
// answer the same fields for every product.

/** One read, ours and theirs: throughput ratio (ours ÷ theirs) and latencies. */
export interface PeerRead {
  ratio: number;
  oursPerSecond: number;
  theirsPerSecond: number;
  oursP99Ms: number;
  theirsP99Ms: number;
  ours: RunSummary;
  theirs: RunSummary;
}

export interface PeerResult {
  peer: string;
  node: string;
  products: number;
  concurrency: number;
  page: PeerRead;
  search: PeerRead;
  /** One product by id over the whole catalog (each about once: no cache holds it). */
  byId: PeerRead;
  /** One product by id over the first 1,000 products, asked again and again. */
  byIdHot: PeerRead;
  /** Per-phase memory and CPU of both servers (for the bench's memory table). */
  memory: PhaseMemory[];
}

/** A product as both servers answer it, in one shape. */
interface Row {
  id: string;
  sku: string;
  name: string;
  priceCents: number;
  available: number;
  inStock: boolean;
}
interface Page {
  rows: Row[];
  hasNextPage: boolean;
}

const OUR_FIELDS = "id sku name priceCents available inStock";
const THEIR_FIELDS = "rowId sku name priceCents inventoryByProductId { available inStock }";
const OURS = {
  page: `query PeerPage { products(first: 20) { edges { node { ${OUR_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
  search: `query PeerSearch($search: String!) {
    products(first: 20, filter: { search: $search, inStock: true }) {
      edges { node { ${OUR_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
  byId: `query PeerProduct($id: ID!) { product(id: $id) { ${OUR_FIELDS} } }`,
  byIdHot: `query PeerProduct($id: ID!) { product(id: $id) { ${OUR_FIELDS} } }`,
};
// What a PostGraphile user writes for the same reads: allProducts ordered by name (the primary
// key breaks ties, as our (name, id) order does), the connection filter for the search, the
// inventory row through its relation, productByRowId for one product.
const THEIRS = {
  page: `query PeerPage { allProducts(first: 20, orderBy: [NAME_ASC, PRIMARY_KEY_ASC]) {
    edges { node { ${THEIR_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
  search: `query PeerSearch($search: String!) {
    allProducts(first: 20, orderBy: [NAME_ASC, PRIMARY_KEY_ASC], filter: {
      or: [{ name: { includesInsensitive: $search } }, { sku: { includesInsensitive: $search } }]
      inventoryByProductId: { available: { greaterThan: 0 } } }) {
      edges { node { ${THEIR_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
  byId: `query PeerProduct($id: UUID!) { productByRowId(rowId: $id) { ${THEIR_FIELDS} } }`,
  byIdHot: `query PeerProduct($id: UUID!) { productByRowId(rowId: $id) { ${THEIR_FIELDS} } }`,
};

type OurNode = Row;
interface TheirNode {
  rowId: string;
  sku: string;
  name: string;
  priceCents: number;
  inventoryByProductId: { available: number; inStock: boolean } | null;
}
interface Connection<N> {
  edges: { node: N }[];
  pageInfo: { hasNextPage: boolean };
}

const ourRow = (n: OurNode): Row => ({
  id: n.id,
  sku: n.sku,
  name: n.name,
  priceCents: n.priceCents,
  available: n.available,
  inStock: n.inStock,
});
const theirRow = (n: TheirNode): Row => ({
  id: n.rowId,
  sku: n.sku,
  name: n.name,
  priceCents: n.priceCents,
  available: n.inventoryByProductId?.available ?? Number.NaN,
  inStock: n.inventoryByProductId?.inStock ?? false,
});

type Read = keyof typeof OURS;

/** byIdHot: the products most of a shop's product-page traffic goes to (as the catalog curve's by-id read). */
const HOT_PRODUCTS = 1_000;

/**
 * The request body of the n-th request of a read, the same sequence for both servers. byId walks
 * the whole catalog (each product about once per run: what a cache cannot hold), byIdHot the
 * first HOT_PRODUCTS of it over and over.
 */
function body(side: typeof OURS, read: Read, n: number, ids: readonly string[]): string {
  const variables =
    read === "search"
      ? { search: SEARCH_TERMS[n % SEARCH_TERMS.length] }
      : read === "byId"
        ? { id: ids[(n * 7919) % ids.length] }
        : read === "byIdHot"
          ? { id: ids[(n * 7919) % Math.min(HOT_PRODUCTS, ids.length)] }
          : {};
  return JSON.stringify({ query: side[read], variables });
}

function ok<T>(res: GraphQLResult<T>, what: string): T {
  if (res.status !== 200 || res.errors?.length || !res.data)
    throw new Error(`${what} failed (${res.status}): ${JSON.stringify(res.errors)}`);
  return res.data;
}

async function ourAnswer(gql: HttpGraphQL, read: Read, n: number, ids: readonly string[]): Promise<Page> {
  if (read === "byId" || read === "byIdHot") {
    const data = ok(await gql.post<{ product: OurNode | null }>(body(OURS, read, n, ids)), `ours ${read}`);
    return { rows: data.product ? [ourRow(data.product)] : [], hasNextPage: false };
  }
  const data = ok(await gql.post<{ products: Connection<OurNode> }>(body(OURS, read, n, ids)), `ours ${read}`);
  return { rows: data.products.edges.map((e) => ourRow(e.node)), hasNextPage: data.products.pageInfo.hasNextPage };
}

async function theirAnswer(gql: HttpGraphQL, read: Read, n: number, ids: readonly string[]): Promise<Page> {
  if (read === "byId" || read === "byIdHot") {
    const data = ok(
      await gql.post<{ productByRowId: TheirNode | null }>(body(THEIRS, read, n, ids)),
      `PostGraphile ${read}`,
    );
    return { rows: data.productByRowId ? [theirRow(data.productByRowId)] : [], hasNextPage: false };
  }
  const data = ok(
    await gql.post<{ allProducts: Connection<TheirNode> }>(body(THEIRS, read, n, ids)),
    `PostGraphile ${read}`,
  );
  return {
    rows: data.allProducts.edges.map((e) => theirRow(e.node)),
    hasNextPage: data.allProducts.pageInfo.hasNextPage,
  };
}

/**
 * Same question, same answer, or no comparison: the first page, every search term's first page,
 * and a sample of products by id must come back identical (rows, order, fields) from both.
 */
export async function checkSameAnswers(ours: HttpGraphQL, theirs: HttpGraphQL, ids: readonly string[]): Promise<void> {
  const samples: [Read, number][] = [
    ["page", 0],
    ...SEARCH_TERMS.map((_, n): [Read, number] => ["search", n]),
    ...Array.from({ length: 25 }, (_, n): [Read, number] => ["byId", n * 13]),
  ];
  for (const [read, n] of samples) {
    const [a, b] = await Promise.all([ourAnswer(ours, read, n, ids), theirAnswer(theirs, read, n, ids)]);
    if (a.rows.length === 0) throw new Error(`peer check: our ${read} #${n} answered no rows`);
    if (JSON.stringify(a) !== JSON.stringify(b))
      throw new Error(
        `peer check: ours and PostGraphile disagree on ${read} #${n} (${body(OURS, read, n, ids)}):\n` +
          `ours   ${JSON.stringify(a)}\ntheirs ${JSON.stringify(b)}`,
      );
  }
}

async function startOnNode(
  bench: Bench,
  name: string,
  script: string,
  env: Record<string, string>,
  node: string,
): Promise<Server> {
  const port = await freePort();
  const proc = bench.spawn(name, script, { PORT: String(port), ...env }, [], node);
  proc.memory.begin("start-up");
  const url = `http://127.0.0.1:${port}`;
  await proc.waitHealthy(`${url}/healthz`);
  proc.memory.end();
  // Both sides on the same Node, or the comparison says nothing: check what the child runs.
  const exe = readlinkSync(`/proc/${proc.child.pid}/exe`);
  if (exe !== realpathSync(node)) {
    await proc.stop();
    throw new Error(`${name} runs ${exe}, not ${node}: does bench.spawn pass its node argument on?`);
  }
  return { name, proc, url, gql: new HttpGraphQL(url, 64) };
}

/** What a PostGraphile user adds to the write tables for these reads (see postgraphileServer.ts). */
const THEIR_INDEX = `CREATE INDEX bench_peer_products_name_idx ON "write"."products"(name, id)`;
const DROP_THEIR_INDEX = `DROP INDEX IF EXISTS "write"."bench_peer_products_name_idx"`;

/** Two closed-loop runs of one server as one: completions over both windows, every latency. */
function merged(runs: LoadResult[]): LoadResult {
  const completed = runs.reduce((a, r) => a + r.completed, 0);
  const seconds = runs.reduce((a, r) => a + r.seconds, 0);
  return {
    completed,
    total: runs.reduce((a, r) => a + r.total, 0),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    firstError: runs.find((r) => r.firstError)?.firstError,
    seconds,
    perSecond: completed / seconds,
    latencies: runs.flatMap((r) => r.latencies),
  };
}

/**
 * Starts our server and PostGraphile, both on Node 22, on the bench database as it is (seeded,
 * projected, analyzed), checks that they answer the same, then times each read with the same
 * closed loop: ours, theirs, theirs, ours (each run half of readMs after its own warm-up), so
 * that a drift in the machine's load during the read weighs on both sides alike.
 */
export async function postgraphilePeer(bench: Bench): Promise<PeerResult> {
  const { path: node, version } = await node22(bench.log);
  const poolEnv = { DB_POOL_SIZE: "20" };
  const { rows } = await bench.db.pool.query<{ id: string }>(
    `SELECT id::text AS id FROM "write"."products" ORDER BY id`,
  );
  const ids = rows.map((r) => r.id);
  // The answers are compared on a still database: every event projected, and our server only
  // reads (no commands, so no order-expiry sweeper releasing stock while both are asked).
  await waitForProjections(bench.db.pool, (bench.readDb ?? bench.db).pool);
  const servers: Server[] = [];
  await bench.db.pool.query(THEIR_INDEX);
  await bench.db.pool.query(`ANALYZE "write"."products"`);
  try {
    const ours = await startOnNode(
      bench,
      `server (${version})`,
      SERVER,
      { ...poolEnv, SERVICES: "queries,projector" },
      node,
    );
    servers.push(ours);
    const theirs = await startOnNode(
      bench,
      `PostGraphile (${version})`,
      "test/bench/postgraphileServer.ts",
      { ...poolEnv, GRAPHILE_ENV: "production" },
      node,
    );
    servers.push(theirs);
    bench.log(`  ours pid ${ours.proc.child.pid}, PostGraphile pid ${theirs.proc.child.pid}, both on ${version}`);
    await checkSameAnswers(ours.gql, theirs.gql, ids);

    const concurrency = bench.settings.readConcurrency;
    const load = (server: Server, read: Read, answer: typeof ourAnswer) =>
      closedLoop({
        concurrency,
        warmupMs: bench.settings.warmupMs,
        durationMs: bench.settings.readMs / 2,
        task: async (n) => void (await answer(server.gql, read, n, ids)),
      });
    // Both servers warmed on all three reads first, so the first read timed does not pay for
    // its server's JIT and pool warming alone.
    const reads = ["page", "search", "byId", "byIdHot"] as const;
    for (const [server, answer] of [
      [ours, ourAnswer],
      [theirs, theirAnswer],
    ] as const) {
      await closedLoop({
        concurrency,
        warmupMs: 0,
        durationMs: bench.settings.warmupMs,
        task: async (n) => void (await answer(server.gql, reads[n % reads.length]!, n, ids)),
      });
    }
    const result: Partial<Record<Read, PeerRead>> = {};
    for (const read of reads) {
      ours.proc.memory.begin(`peers: ${read}`);
      theirs.proc.memory.begin(`peers: ${read}`);
      const ourRuns = [await load(ours, read, ourAnswer)];
      const theirRuns = [await load(theirs, read, theirAnswer), await load(theirs, read, theirAnswer)];
      ourRuns.push(await load(ours, read, ourAnswer));
      const summary = (server: Server, runs: LoadResult[]) => {
        const run = merged(runs);
        if (run.errors)
          bench.notes.push(
            `peers ${read} on ${server.name}: ${run.errors} errors, first: ${run.firstError}; its log ends: ${server.proc.log.slice(-1_000)}`,
          );
        return runSummary(run, concurrency, server.proc.memory.end());
      };
      const [ourRun, theirRun] = [summary(ours, ourRuns), summary(theirs, theirRuns)];
      result[read] = {
        ratio: round(ourRun.perSecond / theirRun.perSecond, 2),
        oursPerSecond: ourRun.perSecond,
        theirsPerSecond: theirRun.perSecond,
        oursP99Ms: ourRun.p99,
        theirsP99Ms: theirRun.p99,
        ours: ourRun,
        theirs: theirRun,
      };
      bench.log(
        `  ${read}: ours ${ourRun.perSecond} req/s p99 ${ourRun.p99} ms, PostGraphile ${theirRun.perSecond} req/s p99 ${theirRun.p99} ms: ×${result[read].ratio}`,
      );
    }
    return {
      peer: "postgraphile",
      node: version,
      products: ids.length,
      concurrency,
      page: result.page!,
      search: result.search!,
      byId: result.byId!,
      byIdHot: result.byIdHot!,
      memory: servers.flatMap((s) => s.proc.memory.phases),
    };
  } finally {
    for (const server of servers) {
      server.gql.close();
      await server.proc.stop();
    }
    await bench.db.pool.query(DROP_THEIR_INDEX);
  }
}
