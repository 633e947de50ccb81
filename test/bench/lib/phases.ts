import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { print } from "graphql";
import pg from "pg";
import {
  PlaceOrderDocument,
  ProductsDocument,
  RestockProductDocument,
} from "../../../src/storefront/generated/graphql";
import {
  countRows,
  SEARCH_TERMS,
  seedOrders,
  waitForProjections,
  type BenchDatabase,
  type BenchProduct,
} from "./database";
import { getText, scrapeMetrics, serverSideDelta, type HttpGraphQL, type ServerSideStats } from "./http";
import { closedLoop, openLoop, type LoadResult } from "./load";
import { heapAfterGcMb } from "./inspector";
import { cpuSeconds, NodeProcess, rssMb, type PhaseMemory } from "./processes";
import { RawOrderWriter } from "./rawOrder";
import { nowMs, round, summarize, type LatencySummary } from "./stats";
import type { SubscriberWorkerData, SubscriberWorkerMessage } from "./subscribers.worker";

export interface Settings {
  warmupMs: number;
  writeMs: number;
  lagMs: number;
  subscribers: number;
  restocks: number;
  readMs: number;
  readConcurrency: number;
  minOrders: number;
  rebuildEvents: number;
  subscriberWorkers: number;
  /** Unpaid orders left to fall due, for the expiry phase. */
  expiryBacklog: number;
}

export interface Server {
  name: string;
  proc: NodeProcess;
  url: string;
  gql: HttpGraphQL;
  /** The port of its V8 inspector, when the bench started it with one (the subscriber curves: heap per subscriber). */
  inspectorPort?: number;
}

/** Starts a server (a node script with the bench's env and more), healthy when it answers. */
export type StartServer = (name: string, script: string, env?: Record<string, string>) => Promise<Server>;

export interface Bench {
  settings: Settings;
  /** The write database (the only one unless readDb is set). */
  db: BenchDatabase;
  /** The read database of a server started with READ_DATABASE_URL. */
  readDb?: BenchDatabase;
  products: BenchProduct[];
  customerTokens: string[];
  adminToken: string;
  notes: string[];
  /** Raw latency samples for the plot, by series label. */
  samples: Record<string, number[]>;
  log(message: string): void;
  /** Starts a node child (server, naive server, CLI) with the bench's env and flags; `node`: another node executable. */
  spawn(name: string, script: string, env?: Record<string, string>, args?: string[], node?: string): NodeProcess;
}

export interface RunSummary extends LatencySummary {
  perSecond: number;
  completed: number;
  /** CPU time of the serving process per request, over the whole run (warm-up included). */
  serverCpuMsPerRequest?: number;
  errors: number;
  concurrency: number;
}

export function runSummary(result: LoadResult, concurrency: number, phase?: PhaseMemory): RunSummary {
  const cpu = phase?.cpuSeconds;
  return {
    perSecond: round(result.perSecond, 1),
    completed: result.completed,
    errors: result.errors,
    concurrency,
    ...(cpu !== undefined && result.total > 0 ? { serverCpuMsPerRequest: round((cpu * 1000) / result.total, 2) } : {}),
    ...summarize(result.latencies),
  };
}

const PLACE_ORDER = print(PlaceOrderDocument);
const RESTOCK = print(RestockProductDocument);
/**
 * The storefront's catalog page, less `position`: the place in the log of a row's last event,
 * which only a projection knows (the naive baseline, reading the write tables, cannot answer it).
 */
const PRODUCTS = print(ProductsDocument).replace(/^\s*position\n/m, "");
if (/\bposition\b/.test(PRODUCTS)) throw new Error("the bench's Products document still asks for position");

export function placeOrderBody(products: BenchProduct[], n: number): string {
  const product = products[Math.floor(Math.random() * products.length)]!;
  return JSON.stringify({
    query: PLACE_ORDER,
    variables: { input: { idempotencyKey: randomUUID(), lines: [{ productId: product.id, quantity: 1 + (n % 3) }] } },
  });
}

export async function placeOrder(bench: Bench, gql: HttpGraphQL, n: number): Promise<string> {
  const res = await gql.post<{ placeOrder: { position: string } }>(
    placeOrderBody(bench.products, n),
    bench.customerTokens[n % bench.customerTokens.length],
  );
  const position = res.data?.placeOrder?.position;
  if (res.status !== 200 || res.errors?.length || !position)
    throw new Error(`placeOrder failed (${res.status}): ${JSON.stringify(res.errors)}`);
  return position;
}

// ---------------------------------------------------------------- write

export interface WriteResult {
  graphql: Record<string, RunSummary>;
  rawSql: Record<string, RunSummary>;
  ratioAt: Record<string, number>;
  /** From the server's /metrics over each GraphQL run. */
  serverSide: Record<string, ServerSideStats>;
  /** The same over each raw SQL run, in which the server only projects: its projector's batches. */
  serverSideRawSql: Record<string, ServerSideStats>;
}

export async function writePhase(bench: Bench, server: Server, concurrencies: number[]): Promise<WriteResult> {
  const { settings } = bench;
  const result: WriteResult = { graphql: {}, rawSql: {}, ratioAt: {}, serverSide: {}, serverSideRawSql: {} };
  for (const c of concurrencies) {
    // Raw SQL first, then GraphQL, at each concurrency: both see the same table sizes, give or take.
    const writers = await Promise.all(Array.from({ length: c }, () => RawOrderWriter.connect(bench.db.url)));
    server.proc.memory.begin(`raw SQL @${c} (server idle but projecting)`);
    try {
      const rawBefore = await scrapeMetrics(server.url);
      const raw = await closedLoop({
        concurrency: c,
        warmupMs: settings.warmupMs,
        durationMs: settings.writeMs,
        task: async (n, worker) => {
          const product = bench.products[Math.floor(Math.random() * bench.products.length)]!;
          await writers[worker]!.placeOrder(`bench-raw-${n % 500}`, randomUUID(), product.id, 1 + (n % 3));
        },
      });
      const rawAfter = await scrapeMetrics(server.url);
      await waitForProjections(bench.db.pool, (bench.readDb ?? bench.db).pool);
      // The server only projects these orders: its CPU per order is the projector's share.
      result.rawSql[c] = runSummary(raw, c, server.proc.memory.end());
      result.serverSideRawSql[c] = serverSideDelta(rawBefore, rawAfter, "placeOrder");
      bench.samples[`raw SQL order tx @${c}`] = raw.latencies;
      if (raw.errors) bench.notes.push(`raw SQL @${c}: ${raw.errors} errors, first: ${raw.firstError}`);
    } finally {
      await Promise.all(writers.map((w) => w.close()));
    }
    bench.log(
      `  raw SQL @${c}: ${result.rawSql[c]!.perSecond} tx/s, p50 ${result.rawSql[c]!.p50} ms, p99 ${result.rawSql[c]!.p99} ms; the server's projector ${JSON.stringify(result.serverSideRawSql[c]!.projector)}`,
    );

    server.proc.memory.begin(`placeOrder GraphQL @${c}`);
    const before = await scrapeMetrics(server.url);
    const gqlRun = await closedLoop({
      concurrency: c,
      warmupMs: settings.warmupMs,
      durationMs: settings.writeMs,
      task: async (n) => void (await placeOrder(bench, server.gql, n)),
    });
    const after = await scrapeMetrics(server.url);
    await waitForProjections(bench.db.pool, (bench.readDb ?? bench.db).pool);
    result.graphql[c] = runSummary(gqlRun, c, server.proc.memory.end());
    result.serverSide[c] = serverSideDelta(before, after, "placeOrder");
    bench.samples[`placeOrder GraphQL @${c}`] = gqlRun.latencies;
    if (gqlRun.errors) bench.notes.push(`placeOrder @${c}: ${gqlRun.errors} errors, first: ${gqlRun.firstError}`);
    result.ratioAt[c] = round(result.graphql[c]!.perSecond / result.rawSql[c]!.perSecond, 3);
    bench.log(
      `  placeOrder GraphQL @${c}: ${result.graphql[c]!.perSecond} orders/s, p50 ${result.graphql[c]!.p50} ms, p99 ${result.graphql[c]!.p99} ms; server-side ${JSON.stringify(result.serverSide[c])}`,
    );
  }
  return result;
}

// ---------------------------------------------------------------- read_changed listener

interface ReadChanged {
  projection: string;
  table: string | null;
  ids: string[];
  txId: string;
  position: string;
}

/** A LISTEN read_changed client in the bench: when each row became visible to every API instance. */
async function listenReadChanged(url: string, onMessage: (m: ReadChanged, t: number) => void): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on("notification", (msg) => {
    const t = nowMs();
    try {
      onMessage(JSON.parse(msg.payload ?? "") as ReadChanged, t);
    } catch {
      // not ours
    }
  });
  await client.connect();
  await client.query("LISTEN read_changed");
  return client;
}

// ---------------------------------------------------------------- projection lag

export interface LagResult extends LatencySummary {
  ratePerSecond: number;
  sent: number;
  errors: number;
  missing: number;
  /** From the request's start (the whole mutation + projection), for comparison. */
  fromRequestStart: LatencySummary;
  /** Server CPU per order: placeOrder without the read-your-writes wait, plus projecting it. */
  serverCpuMsPerOrder: number | undefined;
  serverSide: ServerSideStats;
}

/**
 * Commit → read row visible. The server runs with READ_YOUR_WRITES_TIMEOUT_MS=0, so placeOrder
 * answers right after its commit; the row is visible when read_changed names it (the projector
 * sends it in the transaction that wrote the row, delivered on commit). Lag of an order =
 * t(read_changed naming it, for table "orders") − t(placeOrder response): it slightly
 * underestimates by the response's trip back to the bench (sub-millisecond on loopback).
 */
export async function lagPhase(bench: Bench, server: Server, ratePerSecond: number): Promise<LagResult> {
  // Warm up (JIT, Prisma's compiled queries, pool connections) at the same rate, unrecorded.
  await openLoop({
    ratePerSecond,
    durationMs: bench.settings.warmupMs,
    maxInFlight: 256,
    task: async (n) => void (await placeOrder(bench, server.gql, n)),
  });
  await waitForProjections(bench.db.pool, (bench.readDb ?? bench.db).pool);
  const seen = new Map<string, number>();
  const listener = await listenReadChanged((bench.readDb ?? bench.db).url, (m, t) => {
    if (m.table !== "orders") return;
    for (const id of m.ids) if (!seen.has(id)) seen.set(id, t);
  });
  const sentAt: { position: string; start: number; end: number }[] = [];
  try {
    server.proc.memory.begin(`projection lag (${Math.round(ratePerSecond)} orders/s)`);
    const before = await scrapeMetrics(server.url);
    const run = await openLoop({
      ratePerSecond,
      durationMs: bench.settings.lagMs,
      maxInFlight: 256,
      task: async (n) => {
        const start = nowMs();
        const position = await placeOrder(bench, server.gql, n);
        sentAt.push({ position, start, end: nowMs() });
      },
    });
    await waitForProjections(bench.db.pool, (bench.readDb ?? bench.db).pool);
    await sleep(200); // let the last notifications arrive
    const phase = server.proc.memory.end();
    const serverSide = serverSideDelta(before, await scrapeMetrics(server.url), "placeOrder");
    const { rows } = await bench.db.pool.query<{ position: string; id: string }>(
      `SELECT position::text AS position, stream_id::text AS id FROM "write"."events" WHERE position = ANY($1::bigint[])`,
      [sentAt.map((s) => s.position)],
    );
    const idOf = new Map(rows.map((r) => [r.position, r.id]));
    const lags: number[] = [];
    const fromStart: number[] = [];
    let missing = 0;
    for (const s of sentAt) {
      const t = seen.get(idOf.get(s.position) ?? "");
      if (t === undefined) {
        missing += 1;
        continue;
      }
      lags.push(t - s.end);
      fromStart.push(t - s.start);
    }
    bench.samples[`projection lag @${Math.round(ratePerSecond)}/s (commit → row visible)`] = lags;
    if (run.errors) bench.notes.push(`projection lag: ${run.errors} errors, first: ${run.firstError}`);
    if (run.skipped) bench.notes.push(`projection lag: ${run.skipped} requests skipped (256 in flight)`);
    return {
      ratePerSecond: round(ratePerSecond, 1),
      sent: run.sent,
      errors: run.errors,
      missing,
      ...summarize(lags),
      fromRequestStart: summarize(fromStart),
      serverCpuMsPerOrder:
        phase?.cpuSeconds === undefined || run.sent === 0 ? undefined : round((phase.cpuSeconds * 1000) / run.sent, 2),
      serverSide,
    };
  } finally {
    await listener.end();
  }
}

// ---------------------------------------------------------------- subscriptions

export interface SubscriptionResult extends LatencySummary {
  subscribers: number;
  connected: number;
  restocks: number;
  expectedDeliveries: number;
  delivered: number;
  /** From the bench's own read_changed (the projection's commit) to each client. */
  fromReadChanged: LatencySummary;
  /** Restock commit → read_changed (the projection's share). */
  projection: LatencySummary;
  connectSeconds: number;
  workers: number;
  /** Server CPU over the phase: connecting the clients, the restocks and every push. */
  serverCpuSecondsWithDeliveries: number | undefined;
  /** Server CPU while the restocks were pushed (connecting excluded), per 1,000 pushes delivered. */
  cpuMsPer1000Pushes: number | undefined;
  /** The server's RSS grown by connecting the subscribers, per subscriber (KB): rough, it moves with the GC. */
  rssKbPerSubscriber: number | undefined;
}

/** The products the subscribers of a pattern watch: one for everyOther, one each for own. */
function watchedProducts(bench: Bench, subscribers: number, pattern: SubscriberWorkerData["pattern"]): string[] {
  const watched = pattern === "own" ? bench.products.slice(0, subscribers) : [bench.products[0]!];
  if (watched.length < subscribers && pattern === "own")
    throw new Error(`the product-page pattern needs ${subscribers} stocked products, the bench has ${watched.length}`);
  return watched.map((p) => p.id);
}

/** Waits until the previous round's subscribers are gone from the server's hub, or their sockets count against the next. */
async function drained(server: Server): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await subscriptionCount(server.url)) > 0 && Date.now() < deadline) await sleep(50);
}

/**
 * The server's heap after a full GC, grown by connecting this many subscribers (of the client
 * the timed round used), per subscriber (KB), through the V8 inspector of a server started with one (`inspectorPort`). An untimed
 * round of its own: a server with an active inspector pushes markedly slower (1.3–1.8× the CPU
 * per push, in consecutive runs of the same servers with and without), so the timed rounds run
 * on servers without one.
 */
export async function heapPerSubscriber(
  bench: Bench,
  server: Server,
  { subscribers, pattern, client }: Pick<SubscriberWorkerData, "pattern" | "client"> & { subscribers: number },
): Promise<number> {
  if (server.inspectorPort === undefined) throw new Error("heapPerSubscriber: the server has no inspector");
  await drained(server);
  const before = await heapAfterGcMb(server.inspectorPort);
  const clients = await connectSubscribers(bench, server, {
    subscribers,
    pattern,
    client,
    productIds: watchedProducts(bench, subscribers, pattern),
  });
  try {
    const connected = await heapAfterGcMb(server.inspectorPort);
    return round(((connected - before) * 1024) / Math.max(clients.connected, 1), 1);
  } finally {
    await clients.close();
  }
}

async function subscriptionCount(url: string): Promise<number> {
  const { text } = await getText(`${url}/metrics`);
  const match = /^shop_graphql_subscriptions (\d+)/m.exec(text);
  return match ? Number(match[1]) : 0;
}

export interface SubscriptionOptions {
  /** How many subscribers (default: the settings'). */
  subscribers?: number;
  /**
   * `everyOther`: half watch one product, half every product, and that product is restocked
   * `restocks` times, each change pushed to every subscriber; `own`: each watches a product of
   * its own (the product-page pattern) and every one of those products is restocked once, 16
   * restocks at a time, each change pushed to its one subscriber.
   */
  pattern?: SubscriberWorkerData["pattern"];
  /** graphql-ws's own client (default) or the lean one (see subscribers.worker.ts). */
  client?: SubscriberWorkerData["client"];
}

export interface Subscribers {
  connected: number;
  connectSeconds: number;
  /** [receive time (ms since the epoch), available, subscriber index] per push, as they arrive. */
  deliveries: [number, number, number][];
  /** Worker threads holding them. */
  workers: number;
  close(): Promise<void>;
}

/**
 * Subscribers to inventoryChanged (see subscribers.worker.ts), spread over the bench's worker
 * threads; resolves once every one is registered in the server's hub.
 */
export async function connectSubscribers(
  bench: Bench,
  server: Server,
  options: Pick<SubscriberWorkerData, "pattern" | "client" | "productIds"> & { subscribers: number },
): Promise<Subscribers> {
  const { subscribers } = options;
  const workers: Worker[] = [];
  const workerCount = Math.max(1, Math.min(bench.settings.subscriberWorkers, Math.ceil(subscribers / 100)));
  const deliveries: [number, number, number][] = [];
  const connectStart = performance.now();
  let connected = 0;
  let firstIndex = 0;
  const close = () =>
    Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void w.terminate().then(() => resolve()), 10_000);
            w.on("message", (m: SubscriberWorkerMessage) => m.type === "closed" && (clearTimeout(timer), resolve()));
            w.on("exit", () => (clearTimeout(timer), resolve()));
            w.postMessage({ type: "close" });
          }),
      ),
    ).then(() => undefined);
  try {
    await Promise.all(
      Array.from({ length: workerCount }, (_, w) => {
        const count = Math.floor(subscribers / workerCount) + (w < subscribers % workerCount ? 1 : 0);
        const worker = new Worker(new URL("./subscribers.worker.mjs", import.meta.url), {
          workerData: {
            wsUrl: `${server.url.replace(/^http/, "ws")}/graphql`,
            count,
            firstIndex,
            pattern: options.pattern,
            productIds: options.productIds,
            client: options.client,
          } satisfies SubscriberWorkerData,
        });
        firstIndex += count;
        workers.push(worker);
        return new Promise<void>((resolve, reject) => {
          worker.on("error", reject);
          worker.on("message", (m: SubscriberWorkerMessage) => {
            if (m.type === "connected") {
              connected += m.connected;
              if (m.failed) bench.notes.push(`subscriptions: ${m.failed} clients failed to connect`);
              resolve();
            } else if (m.type === "deliveries") {
              deliveries.push(...m.records);
            } else if (m.type === "errors") {
              bench.notes.push(`subscription error: ${m.message}`);
            }
          });
        });
      }),
    );
    // Subscribed = registered in the server's hub (the metrics gauge), not merely connected.
    const deadline = Date.now() + 60_000;
    while ((await subscriptionCount(server.url)) < connected && Date.now() < deadline) await sleep(100);
  } catch (error) {
    await close();
    throw error;
  }
  const connectSeconds = (performance.now() - connectStart) / 1000;
  bench.log(`  ${connected} subscribers connected in ${connectSeconds.toFixed(1)} s`);
  return { connected, connectSeconds, deliveries, workers: workerCount, close };
}

/**
 * Subscribers to inventoryChanged, graphql-ws clients spread over worker threads; restocks are
 * committed over HTTP (the server answers right after the commit: READ_YOUR_WRITES_TIMEOUT_MS=0)
 * and delivery time is t(client received the push) − t(restock response), for every push.
 */
export async function subscriptionPhase(
  bench: Bench,
  server: Server,
  { subscribers = bench.settings.subscribers, pattern = "everyOther", client = "graphql-ws" }: SubscriptionOptions = {},
): Promise<SubscriptionResult> {
  const pid = server.proc.child.pid!;
  const productIds = watchedProducts(bench, subscribers, pattern);
  /** The restock being committed → its read_changed time (everyOther: one product, one restock at a time). */
  const notified = new Map<number, number>();
  let restockIndex = -1;
  server.proc.memory.begin(`subscriptions (${subscribers} clients, ${pattern}, ${client} client)`);
  await drained(server);
  const rssBefore = rssMb(pid);
  const clients = await connectSubscribers(bench, server, { subscribers, pattern, client, productIds });
  const { connected, deliveries, connectSeconds } = clients;
  let listener: pg.Client | undefined;
  try {
    listener = await listenReadChanged((bench.readDb ?? bench.db).url, (m, t) => {
      if (pattern !== "everyOther" || restockIndex < 0 || notified.has(restockIndex)) return;
      if (m.table === "products" && m.ids.includes(productIds[0]!)) notified.set(restockIndex, t);
    });
    const { rows } = await bench.db.pool.query<{ id: string; available: number }>(
      `SELECT id::text AS id, available FROM "read"."products" WHERE id = ANY($1::uuid[])`,
      [productIds],
    );
    const base = new Map(rows.map((r) => [r.id, r.available]));
    const restock = (productId: string) =>
      server.gql.ok(
        JSON.stringify({ query: RESTOCK, variables: { input: { productId, quantity: 1 } } }),
        bench.adminToken,
      );
    const rssConnected = rssMb(pid);
    const cpuBefore = cpuSeconds(pid);
    const latencies: number[] = [];
    const fromNotify: number[] = [];
    const projection: number[] = [];
    let expectedDeliveries: number;
    if (pattern === "everyOther") {
      const { restocks } = bench.settings;
      expectedDeliveries = connected * restocks;
      const product = productIds[0]!;
      for (let k = 0; k < restocks; k++) {
        restockIndex = k;
        const expected = base.get(product)! + k + 1; // quantity 1 each time; nothing else changes this product meanwhile
        await restock(product);
        const committed = nowMs();
        const until = Date.now() + 10_000;
        while (deliveries.filter((d) => d[1] === expected).length < connected && Date.now() < until) await sleep(10);
        const n = notified.get(k);
        for (const [t, available] of deliveries) {
          if (available !== expected) continue;
          latencies.push(t - committed);
          if (n !== undefined) fromNotify.push(t - n);
        }
        if (n !== undefined) projection.push(n - committed);
        await sleep(100);
      }
    } else {
      // Every watched product restocked once, 16 at a time; subscriber i gets the push of product i.
      expectedDeliveries = connected;
      const committed = new Map<string, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < productIds.length) {
            const product = productIds[next++]!;
            await restock(product);
            committed.set(product, nowMs());
          }
        }),
      );
      const until = Date.now() + 30_000;
      while (deliveries.length < connected && Date.now() < until) await sleep(10);
      for (const [t, available, i] of deliveries) {
        const product = productIds[i % productIds.length]!;
        if (available === base.get(product)! + 1) latencies.push(t - committed.get(product)!);
      }
    }
    const cpuAfter = cpuSeconds(pid);
    const phase = server.proc.memory.end();
    bench.samples[
      `subscription delivery (commit → client, ${subscribers} ${pattern === "own" ? "product pages" : "subscribers"})`
    ] = latencies;
    return {
      subscribers,
      connected,
      restocks: pattern === "everyOther" ? bench.settings.restocks : productIds.length,
      expectedDeliveries,
      delivered: latencies.length,
      ...summarize(latencies),
      fromReadChanged: summarize(fromNotify),
      projection: summarize(projection),
      connectSeconds: round(connectSeconds, 1),
      workers: clients.workers,
      serverCpuSecondsWithDeliveries: phase?.cpuSeconds,
      cpuMsPer1000Pushes:
        cpuBefore !== undefined && cpuAfter !== undefined && latencies.length > 0
          ? round(((cpuAfter - cpuBefore) * 1000 * 1000) / latencies.length, 1)
          : undefined,
      rssKbPerSubscriber:
        rssBefore !== undefined && rssConnected !== undefined && connected > 0
          ? round(((rssConnected - rssBefore) * 1024) / connected, 1)
          : undefined,
    };
  } finally {
    await clients.close();
    await listener?.end();
  }
}

// ---------------------------------------------------------------- read

export interface ReadResult {
  orders: number;
  products: number;
  concurrency: number;
  readTables: RunSummary;
  naive: RunSummary;
  naiveIndexed: RunSummary;
  /** read tables ÷ naive join on the write schema as it is. */
  ratioNoIndex: number;
  /** read tables ÷ naive join with an index on write.order_lines(product_id) added for it. */
  ratioIndexed: number;
  sameAnswers: boolean;
  naiveMemory: PhaseMemory[];
}

function productsBody(n: number): string {
  return JSON.stringify({
    query: PRODUCTS,
    variables: { first: 20, filter: { search: SEARCH_TERMS[n % SEARCH_TERMS.length], inStock: true } },
  });
}

type ProductsPage = {
  products: {
    totalCount: number;
    edges: { node: { id: string; available: number; unitsSold: number; inStock: boolean; stockLevel: string } }[];
  };
};

async function readLoad(bench: Bench, gql: HttpGraphQL): Promise<LoadResult> {
  return closedLoop({
    concurrency: bench.settings.readConcurrency,
    warmupMs: bench.settings.warmupMs,
    durationMs: bench.settings.readMs,
    task: async (n) => {
      const res = await gql.post<ProductsPage>(productsBody(n));
      if (res.status !== 200 || res.errors?.length || !res.data)
        throw new Error(`products failed (${res.status}): ${JSON.stringify(res.errors)}`);
    },
  });
}

export async function readPhase(bench: Bench, server: Server, startNaive: () => Promise<Server>): Promise<ReadResult> {
  const orders = await countRows(bench.db.pool, `"write"."orders"`);
  if (orders < bench.settings.minOrders) {
    bench.log(`  seeding ${bench.settings.minOrders - orders} more orders (SQL, as placeOrder/cancelOrder write them)`);
    await seedOrders(bench.db.pool, bench.settings.minOrders - orders);
  }
  await waitForProjections(bench.db.pool, (bench.readDb ?? bench.db).pool);
  const naive = await startNaive();
  try {
    // Same question, same answer: the baseline is only a baseline if it computes the same page.
    let sameAnswers = true;
    for (let n = 0; n < SEARCH_TERMS.length; n++) {
      const [a, b] = await Promise.all([
        server.gql.ok<ProductsPage>(productsBody(n)),
        naive.gql.ok<ProductsPage>(productsBody(n)),
      ]);
      const key = (p: ProductsPage) =>
        JSON.stringify([
          p.products.totalCount,
          p.products.edges.map((e) => [
            e.node.id,
            e.node.available,
            e.node.unitsSold,
            e.node.inStock,
            e.node.stockLevel,
          ]),
        ]);
      if (key(a) !== key(b)) {
        sameAnswers = false;
        bench.notes.push(`read: the naive join and the read tables disagree for search "${SEARCH_TERMS[n]}"`);
        break;
      }
    }
    const concurrency = bench.settings.readConcurrency;
    server.proc.memory.begin("read: products() from read tables");
    const readRun = await readLoad(bench, server.gql);
    const readTables = runSummary(readRun, concurrency, server.proc.memory.end());
    bench.samples["products() from read tables"] = readRun.latencies;
    bench.log(`  read tables: ${readTables.perSecond} req/s, p50 ${readTables.p50} ms, p99 ${readTables.p99} ms`);

    naive.proc.memory.begin("read: products() joining write tables");
    const naiveRun = await readLoad(bench, naive.gql);
    const naiveSummary = runSummary(naiveRun, concurrency, naive.proc.memory.end());
    bench.samples["products() joining write tables"] = naiveRun.latencies;
    bench.log(`  naive join: ${naiveSummary.perSecond} req/s, p50 ${naiveSummary.p50} ms, p99 ${naiveSummary.p99} ms`);

    await bench.db.pool.query(
      `CREATE INDEX bench_order_lines_product_idx ON "write"."order_lines"(product_id) INCLUDE (quantity)`,
    );
    await bench.db.pool.query(`ANALYZE "write"."order_lines"`);
    naive.proc.memory.begin("read: products() joining write tables + index");
    const indexedRun = await readLoad(bench, naive.gql);
    const naiveIndexed = runSummary(indexedRun, concurrency, naive.proc.memory.end());
    await bench.db.pool.query(`DROP INDEX "write"."bench_order_lines_product_idx"`);
    bench.samples["products() joining write tables + index"] = indexedRun.latencies;
    bench.log(
      `  naive join + index: ${naiveIndexed.perSecond} req/s, p50 ${naiveIndexed.p50} ms, p99 ${naiveIndexed.p99} ms`,
    );

    return {
      orders: await countRows(bench.db.pool, `"write"."orders"`),
      products: await countRows(bench.db.pool, `"write"."products"`),
      concurrency,
      readTables,
      naive: naiveSummary,
      naiveIndexed,
      ratioNoIndex: round(readTables.perSecond / naiveSummary.perSecond, 2),
      ratioIndexed: round(readTables.perSecond / naiveIndexed.perSecond, 2),
      sameAnswers,
      naiveMemory: naive.proc.memory.phases,
    };
  } finally {
    naive.gql.close();
    await naive.proc.stop();
  }
}

// ---------------------------------------------------------------- rebuild

export interface RebuildResult {
  events: number;
  batchSize: number;
  projections: string[];
  /** Seconds each projection's batch transactions took, side by side (the slowest sets the pace). */
  perProjection: { name: string; batchSeconds: number }[];
  seconds: number;
  /** Events in the log ÷ the time of one CLI run rebuilding every projection. */
  eventsPerSecond: number;
  peakRssMb: number | undefined;
  consistent: boolean;
}

/**
 * The operator's rebuild of both projections in one run (`npm run projections -- rebuild catalog
 * orders`, src/projection/rebuild.ts: the log read once into shadow tables, both projections applying
 * each batch side by side, then one atomic swap) over a log topped up to the target size, while
 * the server keeps running. The CLI reports the time of the rebuild itself (start-up excluded).
 */
export async function rebuildPhase(bench: Bench, server: Server): Promise<RebuildResult> {
  const target = bench.settings.rebuildEvents;
  let events = await countRows(bench.db.pool, `"write"."events"`);
  if (events < target) {
    const orders = Math.ceil((target - events) / 1.1) + 10;
    bench.log(`  seeding ${orders} more orders (${target - events}+ events)`);
    await seedOrders(bench.db.pool, orders);
    events = await countRows(bench.db.pool, `"write"."events"`);
  }
  await waitForProjections(bench.db.pool, (bench.readDb ?? bench.db).pool);
  const batchSize = 10_000; // what the CLI uses: max(PROJECTOR_BATCH_SIZE, 10000)
  const projections = ["catalog", "orders"];
  server.proc.memory.begin("rebuild (server keeps serving; CLI rebuilds)");
  const cli = bench.spawn(`rebuild ${projections.join(" + ")} (CLI)`, "scripts/projections.ts", { LOG_LEVEL: "warn" }, [
    "rebuild",
    ...projections,
  ]);
  cli.memory.begin(`rebuild ${projections.join(" + ")}`);
  const code = await cli.wait();
  cli.memory.stop();
  const match = /rebuilt [^:]+: (\d+) events in ([\d.]+) s .*side by side: (.*)\)/.exec(cli.log);
  if (code !== 0 || !match) throw new Error(`rebuild failed (exit ${code}):\n${cli.log}`);
  const seconds = Number(match[2]);
  const perProjection = [...match[3]!.matchAll(/(\w+) ([\d.]+) s/g)].map((m) => ({
    name: m[1]!,
    batchSeconds: Number(m[2]),
  }));
  bench.log(
    `  rebuilt ${projections.join(" + ")}: ${match[1]} events in ${seconds} s (${match[3]} in batch transactions)`,
  );
  server.proc.memory.end();
  // The rebuilt tables must say what the write model says.
  const { rows } = await bench.db.pool.query<{ ok: boolean }>(
    `SELECT (SELECT count(*) FROM "read"."orders") = (SELECT count(*) FROM "write"."orders")
        AND (SELECT count(*) FROM "read"."orders" r JOIN "write"."orders" w USING (id) WHERE r.status <> w.status) = 0
        AND (SELECT count(*) FROM "read"."products" r JOIN "write"."inventory" i ON i.product_id = r.id WHERE r.available <> i.available) = 0
        AND (SELECT count(*) FROM "read"."products") = (SELECT count(*) FROM "write"."products") AS ok`,
  );
  return {
    events,
    batchSize,
    projections,
    perProjection,
    seconds,
    eventsPerSecond: Math.round(events / seconds),
    peakRssMb: cli.memory.phases[0]?.peakRssMb,
    consistent: rows[0]?.ok === true,
  };
}
