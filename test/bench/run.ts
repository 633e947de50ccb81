// npm run bench [-- --quick] [-- --only=write,lag,subscriptions,read,rebuild,split,nats,expiry,flood,overload,curves,peers] [-- --curves=subscribers,productPages,catalogSize,logSize] [-- --subscribers=1000,5000] [-- --long] [-- --log-size-from=<results.json>] [-- --log-size-rounds=N] [-- --soak[=minutes]] [-- --baseline=<checkout>] [-- --profile[=dir]] [-- --keep-db]
//
// Starts the real server (node --import tsx src/main.ts) on a database of its own on the local
// Postgres and measures, in one run: placeOrder over GraphQL against the same order transaction
// as raw SQL, projection lag, subscription fan-out, products() from the read tables against a
// naive join of the write tables, projection rebuild speed, and the write ratio and lag again
// with the read side on a database of its own (READ_DATABASE_URL), with the server's peak memory
// and CPU per phase. Prints a table and writes test/bench/results/latest.json + latencies.svg
// (a --quick run: quick.json; a run with --only or --profile: partial.json).
//   --profile     node --cpu-prof on every child process; summarize with test/bench/profile.ts
//   --keep-db     keep the database for inspection (the next run drops it)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { signToken } from "../../src/http/auth";
import {
  countRows,
  createBenchDatabase,
  dropStaleBenchDatabases,
  seedProducts,
  stockedProducts,
  waitForProjections,
} from "./lib/database";
import { HttpGraphQL } from "./lib/http";
import {
  heapPerSubscriber,
  lagPhase,
  readPhase,
  rebuildPhase,
  subscriptionPhase,
  writePhase,
  type Bench,
  type LagResult,
  type ReadResult,
  type RebuildResult,
  type Server,
  type Settings,
  type SubscriptionResult,
  type WriteResult,
} from "./lib/phases";
import { freePort } from "../support/ports";
import { startNats, stopAllNats } from "../support/natsServer";
import { relayCatchUp, type NatsResult } from "./lib/nats";
import { expiryPhase, type ExpiryResult } from "./lib/expiry";
import { floodPhase, type FloodResult } from "./lib/flood";
import { overloadPhase, type OverloadResult } from "./lib/overload";
import {
  catalogCurve,
  ORDERS_PER_SECOND,
  subscriberPoint,
  type CatalogPoint,
  type SubscriberPoint,
} from "./lib/curves";
import { NodeProcess, ROOT, SERVER, serverOf, type PhaseMemory } from "./lib/processes";
import { postgraphilePeer, type PeerResult } from "./lib/peers";
import { logSizeCurve, type LogSizeInterleaved, type LogSizePoint, type RebuildPoint } from "./lib/logSize";
import { soak, SOAK_READS_PER_SECOND, type SoakResult } from "./lib/soak";
import { curvesSvg, latencySvg, table, type CurvePanel } from "./lib/report";
import { drift, round } from "./lib/stats";
import { buildServer } from "../../scripts/build-server";

const PHASES = [
  "write",
  "lag",
  "subscriptions",
  "read",
  "rebuild",
  "split",
  "nats",
  "expiry",
  "flood",
  "overload",
  "curves",
  "peers",
] as const;
type Phase = (typeof PHASES)[number];

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const keepDb = args.includes("--keep-db");
const profileArg = args.find((a) => a === "--profile" || a.startsWith("--profile="));
const profileDir = profileArg ? (profileArg.split("=")[1] ?? `${os.tmpdir()}/shop-bench-profiles`) : undefined;
const only = new Set<Phase>(
  (args
    .find((a) => a.startsWith("--only="))
    ?.slice(7)
    .split(",") as Phase[] | undefined) ?? PHASES,
);
for (const p of only) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p}; phases: ${PHASES.join(", ")}`);
/** The curves the "curves" phase measures (`--curves=subscribers,catalogSize`; all by default). */
const CURVES = ["subscribers", "productPages", "catalogSize", "logSize"] as const;
type Curve = (typeof CURVES)[number];
const curvesToRun = new Set<Curve>(
  (args
    .find((a) => a.startsWith("--curves="))
    ?.slice(9)
    .split(",") as Curve[] | undefined) ?? CURVES,
);
/** `--subscribers=1000,5000`: the subscriber curve's points (to profile one size). */
const subscriberCounts = args
  .find((a) => a.startsWith("--subscribers="))
  ?.slice(14)
  .split(",")
  .map(Number);
/** `--baseline=<checkout>`: the subscriber curves, the event log's write ratio and lag, and the catalog's reads under writes also measured on the server of another checkout. */
const baselineRoot = args.find((a) => a.startsWith("--baseline="))?.slice(11);
/** `--long`: the event-log curve goes on to 10⁷ events (about an hour more, and 17 GB of disk). */
const long = args.includes("--long");
/** `--soak[=minutes]`: after everything else, one server for that long (30 min by default) at half the write rate. */
const soakArg = args.find((a) => a === "--soak" || a.startsWith("--soak="));
const soakMinutes = soakArg ? Number(soakArg.split("=")[1] ?? 30) : undefined;
/** `--soak-from=<results.json>`: no soak in this run; the soak of an earlier run's file, with its date, goes in the results. */
const soakFrom = args.find((a) => a.startsWith("--soak-from="))?.slice(12);
/**
 * `--log-size-from=<results.json>`: the event-log curve and the rebuild are not measured in this
 * run; an earlier run's (a `--long` one: its points side by side, 10⁵ to 10⁷), each point marked
 * with that run's date, go in the results.
 */
const logSizeFrom = args.find((a) => a.startsWith("--log-size-from="))?.slice(16);
/** `--log-size-rounds=N`: the event-log curve's rounds of the smallest and the largest log in turns (default 2: ABBA; 4: ABBAABBA). */
const logSizeRoundsArg = args.find((a) => a.startsWith("--log-size-rounds="))?.slice(18);
const logSizeRounds = logSizeRoundsArg === undefined ? undefined : Number(logSizeRoundsArg);
if (logSizeRounds !== undefined && !(Number.isInteger(logSizeRounds) && logSizeRounds >= 0))
  throw new Error(`--log-size-rounds wants a whole number of rounds, not ${logSizeRoundsArg}`);
for (const c of curvesToRun)
  if (!CURVES.includes(c)) throw new Error(`unknown curve ${c}; curves: ${CURVES.join(", ")}`);

const settings: Settings = quick
  ? {
      warmupMs: 500,
      writeMs: 2_500,
      lagMs: 3_000,
      subscribers: 200,
      restocks: 5,
      readMs: 2_000,
      readConcurrency: 16,
      minOrders: 10_000,
      rebuildEvents: 10_000,
      subscriberWorkers: 2,
      expiryBacklog: 500,
    }
  : {
      warmupMs: 2_000,
      writeMs: 15_000,
      lagMs: 20_000,
      subscribers: 1_000,
      restocks: 10,
      readMs: 10_000,
      readConcurrency: 16,
      minOrders: 20_000,
      rebuildEvents: 100_000,
      subscriberWorkers: 2,
      expiryBacklog: 2_000,
    };
const PRODUCTS = 2_000;
const CUSTOMERS = 500;
const JWT_SECRET = "bench-secret-0123456789-0123456789-0123456789";
const TARGETS = {
  writeRatio: 0.6,
  projectionLagP99Ms: 50,
  subscriptionP99Ms: 100,
  readRatio: 2,
  rebuildEventsPerSec: 20_000,
  /** A shopper's p99 while another customer floods mutations, over its p99 alone. */
  floodP99Ratio: 2,
  /** The catalog search's p99 at 100,000 products over its p99 at 1,000. */
  catalogP99Growth: 2,
  /** Delivery p99 with 1,000 and with 10,000 subscribers, every push delivered. */
  subscribers1kP99Ms: 60,
  subscribers10kP99Ms: 500,
  /** The lag p99 and the write ratio at 10⁷ events, each within this fraction of its value at 10⁵. */
  logSizeDrift: 0.15,
  rebuildEventsPerSecAt1M: 30_000,
  /** Our catalog reads' throughput over PostGraphile v5's on the write tables (page, search, by id), p99 no worse. */
  peerRatio: 1.5,
  /** The soak server's RSS at the end over after the warm-up, in %. */
  soakRssGrowthPct: 10,
};

interface Curves {
  catalogSize?: CatalogPoint[];
  subscribers?: SubscriberPoint[];
  subscribersGraphqlWsClient?: SubscriberPoint[];
  subscribersBaseline?: SubscriberPoint[];
  productPages?: SubscriberPoint[];
  logSize?: LogSizePoint[];
  /** The smallest and the largest log again, in turns: the drift targets are taken from these. */
  logSizeInterleaved?: LogSizeInterleaved;
  rebuild?: RebuildPoint[];
}

const started = Date.now();
const log = (message: string) =>
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);

async function main(): Promise<void> {
  await buildServer(); // the server as `npm start` runs it, from the code as it is
  const loadStart = os.loadavg();
  const stale = await dropStaleBenchDatabases();
  const db = await createBenchDatabase();
  log(
    `database ${db.name}${quick ? " (quick mode)" : ""}${profileDir ? `, CPU profiles in ${profileDir}` : ""}${stale.length ? `; dropped ${stale.length} left over by killed runs` : ""}`,
  );
  const processes: NodeProcess[] = [];
  process.once("SIGINT", () => {
    log("interrupted: stopping the child processes and dropping the database");
    void Promise.allSettled(processes.map((p) => p.stop(3_000)))
      .then(() => db.drop())
      .finally(() => process.exit(130));
  });
  const memory: PhaseMemory[] = [];
  const bench: Bench = {
    settings,
    db,
    products: [],
    notes: [],
    samples: {},
    log,
    customerTokens: Array.from({ length: CUSTOMERS }, (_, i) =>
      signToken(JWT_SECRET, `bench-customer-${i}`, "customer", 3600 * 6),
    ),
    adminToken: signToken(JWT_SECRET, "bench-admin", "admin", 3600 * 6),
    spawn(name, script, env = {}, extraArgs = [], node) {
      const proc = NodeProcess.spawn({
        name,
        script,
        node,
        args: extraArgs,
        env: {
          DATABASE_URL: db.url,
          JWT_SECRET,
          LOG_LEVEL: "warn",
          NODE_ENV: "production",
          // The bench's clients send the same document text to every server compared, all from
          // 127.0.0.1, thousands of sockets for a few actors: the edge's limits would refuse them.
          TRUSTED_DOCUMENTS: "off",
          MAX_SOCKETS_PER_IP: "0",
          MAX_SOCKETS_PER_ACTOR: "0",
          ...env,
        },
        nodeFlags: profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [],
      });
      processes.push(proc);
      return proc;
    },
  };
  const startServer = async (name: string, script: string, env: Record<string, string> = {}): Promise<Server> => {
    const port = await freePort();
    const proc = bench.spawn(name, script, { PORT: String(port), ...env });
    proc.memory.begin("start-up");
    const url = `http://127.0.0.1:${port}`;
    await proc.waitHealthy(`${url}/healthz`);
    proc.memory.end();
    return { name, proc, url, gql: new HttpGraphQL(url, 64) };
  };
  const stopServer = async (server: Server) => {
    server.gql.close();
    await server.proc.stop();
    memory.push(...server.proc.memory.phases);
  };

  let write: WriteResult | undefined;
  let lag: LagResult | undefined;
  let lagQuarter: LagResult | undefined;
  let subscriptions: SubscriptionResult | undefined;
  let read: ReadResult | undefined;
  let rebuild: RebuildResult | undefined;
  let split: { write: WriteResult; lag: LagResult } | undefined;
  let nats: NatsResult | undefined;
  let expiry: ExpiryResult | undefined;
  let flood: FloodResult | undefined;
  let overload: OverloadResult | undefined;
  const curves: Curves = {};
  let soakResult: SoakResult | undefined;
  let peers: PeerResult | undefined;
  let pgVersion = "";
  try {
    pgVersion = (await db.pool.query<{ v: string }>("SELECT version() AS v")).rows[0]!.v;

    // Server A: shipped defaults (mutations wait up to 2 s for read-your-writes).
    const a = await startServer("server (defaults)", SERVER);
    log(`server A (defaults) pid ${a.proc.child.pid} at ${a.url}`);
    a.proc.memory.begin("seed");
    await seedProducts(db.pool, PRODUCTS);
    await waitForProjections(db.pool);
    // Statistics, as autovacuum would gather them on a live database (it is off on these
    // machines): without them the planner guesses table sizes and picks plans no shop would see.
    await db.pool.query("ANALYZE");
    bench.products = await stockedProducts(db.pool);
    log(`seeded ${PRODUCTS} products (${bench.products.length} with stock)`);
    if (only.has("write")) {
      log("write: raw SQL order transaction vs placeOrder over GraphQL");
      write = await writePhase(bench, a, [8, 32]);
    }
    await stopServer(a);

    // Server B: READ_YOUR_WRITES_TIMEOUT_MS=0, so a mutation answers right after its commit and
    // the time of its answer stands for the commit time.
    const b = await startServer("server (READ_YOUR_WRITES_TIMEOUT_MS=0)", SERVER, {
      READ_YOUR_WRITES_TIMEOUT_MS: "0",
    });
    log(`server B (no read-your-writes wait) pid ${b.proc.child.pid} at ${b.url}`);
    if (only.has("lag")) {
      const rate = write ? write.graphql[32]!.perSecond / 2 : 100;
      log(`projection lag at ${Math.round(rate)} orders/s (half the GraphQL rate at 32)`);
      lag = await lagPhase(bench, b, rate);
      log(
        `  lag p50 ${lag.p50} ms, p99 ${lag.p99} ms (${lag.count} orders, ${lag.missing} not seen); server CPU ${lag.serverCpuMsPerOrder} ms/order; ${JSON.stringify(lag.serverSide)}`,
      );
      if (!quick) {
        // A second point, well below saturation, to tell the projector's own lag from queueing.
        log(`projection lag at ${Math.round(rate / 2)} orders/s (a quarter of the GraphQL rate at 32)`);
        lagQuarter = await lagPhase(bench, b, rate / 2);
        log(
          `  lag p50 ${lagQuarter.p50} ms, p99 ${lagQuarter.p99} ms (${lagQuarter.count} orders, ${lagQuarter.missing} not seen); server CPU ${lagQuarter.serverCpuMsPerOrder} ms/order`,
        );
      }
    }
    if (only.has("subscriptions")) {
      log(`subscriptions: ${settings.subscribers} graphql-ws clients, ${settings.restocks} restocks`);
      subscriptions = await subscriptionPhase(bench, b);
      log(
        `  delivery p50 ${subscriptions.p50} ms, p99 ${subscriptions.p99} ms (${subscriptions.delivered}/${subscriptions.expectedDeliveries})`,
      );
    }
    if (only.has("read")) {
      log("read: products(first: 20, filter) from read tables vs joining the write tables");
      read = await readPhase(bench, b, () => startServer("naive read server", "test/bench/naiveServer.ts"));
      memory.push(...read.naiveMemory);
    }
    if (only.has("rebuild")) {
      log(`rebuild: catalog and orders projections over ≥ ${settings.rebuildEvents} events`);
      rebuild = await rebuildPhase(bench, b);
      log(`  ${rebuild.events} events, ${rebuild.eventsPerSecond} events/s`);
      memory.push(...processes.filter((p) => p.name.startsWith("rebuild")).flatMap((p) => p.memory.phases));
    }
    await stopServer(b);

    if (only.has("split")) {
      // The same write and lag measurements with the read side on a database of its own, on
      // the same Postgres server (as far apart as one machine allows), side by side with the above.
      const readDb = await createBenchDatabase();
      try {
        const splitBench = { ...bench, readDb };
        const env = { READ_DATABASE_URL: readDb.url };
        const c = await startServer("server (separate read database)", SERVER, env);
        log(`split: server C (READ_DATABASE_URL) pid ${c.proc.child.pid}; filling the read database from the log`);
        await waitForProjections(db.pool, readDb.pool);
        const splitWrite = await writePhase(splitBench, c, [32]);
        await stopServer(c);
        const d = await startServer("server (separate read database, READ_YOUR_WRITES_TIMEOUT_MS=0)", SERVER, {
          ...env,
          READ_YOUR_WRITES_TIMEOUT_MS: "0",
        });
        const rate = write ? write.graphql[32]!.perSecond / 2 : 100;
        log(`split: projection lag at ${Math.round(rate)} orders/s`);
        const splitLag = await lagPhase(splitBench, d, rate);
        await stopServer(d);
        split = { write: splitWrite, lag: splitLag };
        log(
          `  split: writeRatio ${round(splitWrite.graphql[32]!.perSecond / splitWrite.rawSql[32]!.perSecond, 3)}, lag p50 ${splitLag.p50} ms, p99 ${splitLag.p99} ms`,
        );
      } finally {
        await readDb.drop().catch((error: unknown) => console.error(`could not drop ${readDb.name}: ${String(error)}`));
      }
    }
    if (only.has("nats")) {
      // The relay and a query service fed from NATS alone, on a private nats-server.
      const server = await startNats();
      const readDb = await createBenchDatabase();
      try {
        const logEvents = Number(
          (await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "write"."events"`)).rows[0]!.n,
        );
        const e = await startServer("server (relay, READ_YOUR_WRITES_TIMEOUT_MS=0)", SERVER, {
          SERVICES: "commands,relay",
          EVENTS_NATS_URL: server.url,
          READ_YOUR_WRITES_TIMEOUT_MS: "0",
        });
        log(`nats: relaying the log so far (${logEvents} events) into an empty stream`);
        const catchUp = await relayCatchUp(server.url, logEvents);
        log(`  ${catchUp.events} events in ${catchUp.seconds} s: ${catchUp.eventsPerSecond} events/s`);
        const f = await startServer("query service (PROJECTOR_SOURCE=nats)", SERVER, {
          DATABASE_URL: "",
          READ_DATABASE_URL: readDb.url,
          SERVICES: "queries,projector",
          PROJECTOR_SOURCE: "nats",
          EVENTS_NATS_URL: server.url,
        });
        log("nats: the NATS-fed query service fills its read database from the stream");
        const filled = Date.now();
        await waitForProjections(db.pool, readDb.pool);
        const fillSeconds = (Date.now() - filled) / 1000;
        const rate = write ? write.graphql[32]!.perSecond / 2 : 100;
        log(`nats: commit → NATS-fed read row lag at ${Math.round(rate)} orders/s`);
        const natsLag = await lagPhase({ ...bench, readDb }, e, rate);
        await stopServer(f);
        await stopServer(e);
        nats = {
          relayCatchUp: catchUp,
          logAppendEventsPerSecond: write ? write.graphql[32]!.perSecond : null,
          relayToAppendRatio: write ? round(catchUp.eventsPerSecond / write.graphql[32]!.perSecond, 2) : null,
          projectorFillEventsPerSecond: round(logEvents / fillSeconds, 0),
          lag: natsLag,
        };
        log(
          `  NATS-fed lag p50 ${natsLag.p50} ms, p99 ${natsLag.p99} ms; relay ${catchUp.eventsPerSecond} events/s vs the log's ${nats.logAppendEventsPerSecond ?? "?"} appends/s at concurrency 32`,
        );
      } finally {
        await readDb.drop().catch((error: unknown) => console.error(`could not drop ${readDb.name}: ${String(error)}`));
        await stopAllNats();
      }
    }
    if (only.has("expiry")) {
      log(`expiry: ${settings.expiryBacklog} unpaid orders fall due while no instance runs; the next one expires them`);
      expiry = await expiryPhase(bench, startServer, stopServer, settings.expiryBacklog);
      log(
        `  placeOrder while every order expires 1 s after it is placed: writeRatio ${expiry.writeRatioWhileExpiring} (${expiry.expiredDuringRun} expired during the run)${write ? `; ${write.ratioAt[32]} in the write phase` : ""}`,
      );
    }
    if (only.has("flood")) {
      log("flood: one customer floods placeOrder from 64 connections while another shops at 20 requests/s");
      flood = await floodPhase(bench, startServer, stopServer, quick ? 5 : 15);
    }
    if (only.has("overload")) {
      log("overload: orders from many customers at twice the server's capacity, shed (MUTATION_QUEUE_MS) and not");
      overload = await overloadPhase(bench, startServer, stopServer, quick ? 5 : 15);
    }
    if (only.has("curves") && (curvesToRun.has("subscribers") || curvesToRun.has("productPages"))) {
      const counts = subscriberCounts ?? (quick ? [200, 1_000] : [1_000, 5_000, 10_000]);
      // The bench's admin restocks 16 products at a time for the product pages: not an actor to rate-limit.
      const pushing = await startServer("server (subscriber curves)", SERVER, {
        READ_YOUR_WRITES_TIMEOUT_MS: "0",
        MUTATIONS_PER_SECOND: "0",
        MUTATION_CONCURRENCY: "0",
      });
      // Heap per subscriber, in untimed rounds of its own: through the V8 inspector of another
      // server (an active inspector slows pushes), which neither projects nor is timed.
      const inspectorPort = await freePort();
      const inspected = await startServer("server (subscriber heap, with an inspector)", SERVER, {
        RUN_PROJECTOR: "false",
        NODE_OPTIONS: `--inspect=127.0.0.1:${inspectorPort}`,
      });
      inspected.inspectorPort = inspectorPort;
      // --baseline=<checkout>: the same server from another checkout (the code before a change), measured beside it.
      const baseline = baselineRoot
        ? await startServer("server (subscriber curves, baseline)", serverOf(baselineRoot), {
            READ_YOUR_WRITES_TIMEOUT_MS: "0",
            MUTATIONS_PER_SECOND: "0",
            MUTATION_CONCURRENCY: "0",
            TSX_TSCONFIG_PATH: `${baselineRoot}/tsconfig.json`,
          })
        : undefined;
      const measure = async (
        count: number,
        pattern: "everyOther" | "own",
        client: "lean" | "graphql-ws",
        server = pushing,
      ) => {
        const r = await subscriptionPhase(bench, server, { subscribers: count, pattern, client });
        const heap =
          server === pushing
            ? await heapPerSubscriber(bench, inspected, { subscribers: count, pattern, client })
            : null;
        log(
          `  ${count} ${pattern === "own" ? "product pages" : "subscribers"} (${client} client${server === baseline ? ", baseline" : ""}): p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.delivered}/${r.expectedDeliveries} delivered, ${r.cpuMsPer1000Pushes} ms CPU per 1,000 pushes, ${heap ?? "?"} KB of heap (${r.rssKbPerSubscriber} KB RSS) per subscriber`,
        );
        return subscriberPoint(count, r, heap);
      };
      // A fresh server's first fan-outs pay for its JIT and its first connections' buffers: one
      // round of each pattern, not counted, before the points (a shop's server has been running).
      const warmUp = async (pattern: "everyOther" | "own", server = pushing) => {
        await subscriptionPhase(bench, server, { subscribers: counts[0]!, pattern, client: "lean" });
        bench.log(`  (that round warmed the server up; not counted)`);
      };
      if (curvesToRun.has("subscribers")) {
        log(`curves: ${counts.join(", ")} subscribers, each restock pushed to every one`);
        curves.subscribers = [];
        await warmUp("everyOther");
        if (baseline) await warmUp("everyOther", baseline);
        for (const count of counts) {
          curves.subscribers.push(await measure(count, "everyOther", "lean"));
          if (baseline) (curves.subscribersBaseline ??= []).push(await measure(count, "everyOther", "lean", baseline));
        }
        // The storefront's own client beside it, at the first size: what the client's share is.
        curves.subscribersGraphqlWsClient = [await measure(counts[0]!, "everyOther", "graphql-ws")];
      }
      if (curvesToRun.has("productPages")) {
        const needed = Math.max(...counts);
        if (bench.products.length < needed) {
          // Every tenth seeded product has no stock: seed enough for one stocked product per page.
          const total = await countRows(db.pool, `"write"."products"`);
          await seedProducts(db.pool, Math.ceil(((needed - bench.products.length) * 10) / 9) + 10, total);
          await waitForProjections(db.pool);
          bench.products = await stockedProducts(db.pool);
        }
        log(`curves: ${counts.join(", ")} product pages, each subscriber watching a product of its own`);
        curves.productPages = [];
        await warmUp("own");
        for (const count of counts) curves.productPages.push(await measure(count, "own", "lean"));
      }
      await stopServer(pushing);
      await stopServer(inspected);
      if (baseline) await stopServer(baseline);
    }
    if (only.has("curves") && curvesToRun.has("catalogSize")) {
      const sizes = quick ? [1_000, 10_000] : [1_000, 10_000, 100_000];
      log(`curves: the catalog at ${sizes.join(", ")} products`);
      curves.catalogSize = await catalogCurve(
        bench,
        startServer,
        stopServer,
        sizes,
        baselineRoot
          ? (name, env) =>
              startServer(name, serverOf(baselineRoot), { ...env, TSX_TSCONFIG_PATH: `${baselineRoot}/tsconfig.json` })
          : undefined,
      );
    }
    if (only.has("curves") && curvesToRun.has("logSize") && logSizeFrom) {
      Object.assign(curves, earlierLogSize(logSizeFrom));
      log(
        `curves: the event log and the rebuild from ${logSizeFrom} (measured ${curves.logSize![0]!.measuredInAnEarlierRun})`,
      );
    } else if (only.has("curves") && curvesToRun.has("logSize")) {
      const sizes = quick ? [10_000, 100_000] : long ? [100_000, 1_000_000, 10_000_000] : [100_000, 1_000_000];
      log(`curves: the event log at ${sizes.join(", ")} events (and a rebuild at the largest up to 10⁶)`);
      const grown = await logSizeCurve(
        bench,
        startServer,
        stopServer,
        sizes,
        // verify of the seeded log has a test of its own (test/integration/benchSeed.test.ts); at 10⁶ it takes minutes.
        {
          ...(quick ? { rebuildAt: [100_000], interleavedRounds: 1 } : {}),
          ...(logSizeRounds === undefined ? {} : { interleavedRounds: logSizeRounds }),
          verifyAt: [],
          baselineRoot,
        },
      );
      curves.logSize = grown.logSize;
      if (grown.interleaved) curves.logSizeInterleaved = grown.interleaved;
      curves.rebuild = grown.rebuild;
    }
    if (only.has("peers")) {
      log("peers: our catalog reads (read tables) vs PostGraphile v5 on the write tables, both on Node 22");
      peers = await postgraphilePeer(bench);
      memory.push(...peers.memory);
    }
    if (soakMinutes !== undefined) {
      const rate = write ? write.graphql[32]!.perSecond / 2 : 100;
      if (!write) bench.notes.push("soak: no write phase in this run, so 100 orders/s instead of half the write rate");
      log(
        `soak: ${soakMinutes} min at ${Math.round(rate)} orders/s with 1,000 subscribers (product pages) and ${SOAK_READS_PER_SECOND} catalog reads/s`,
      );
      if (bench.products.length < 1_000)
        throw new Error(`the soak needs 1,000 stocked products, the bench has ${bench.products.length}`);
      // Orders stay unpaid and must not expire within the soak: from minute 15 (the default
      // 900 s) every order would come back as a cancellation, doubling the commands to the whole
      // write rate instead of half of it (measured 2026-12-05: soak-expiring-2026-12-05.json).
      const server = await startServer("server (soak)", SERVER, {
        READ_YOUR_WRITES_TIMEOUT_MS: "0",
        ORDER_PAYMENT_TIMEOUT_SECONDS: "86400",
      });
      try {
        soakResult = await soak(bench, server, { minutes: soakMinutes, ratePerSecond: rate });
      } finally {
        server.gql.close();
        await server.proc.stop(); // its per-minute memory phases are the soak's curve, not the memory table's
      }
    }
  } finally {
    for (const p of processes) await p.stop().catch(() => undefined);
    if (keepDb) log(`kept database ${db.name} (--keep-db): ${db.url}`);
    else await db.drop().catch((error: unknown) => console.error(`could not drop ${db.name}: ${String(error)}`));
  }

  const loadEnd = os.loadavg();
  const headline = {
    writeRatio: write ? round(write.graphql[32]!.perSecond / write.rawSql[32]!.perSecond, 3) : null,
    projectionLagP99Ms: lag?.p99 ?? null,
    subscribers: subscriptions?.connected ?? null,
    subscriptionP99Ms: subscriptions?.p99 ?? null,
    readRatio: read?.ratioIndexed ?? null,
    rebuildEventsPerSec: rebuild?.eventsPerSecond ?? null,
    nats: nats
      ? {
          relayEventsPerSec: nats.relayCatchUp.eventsPerSecond,
          relayToAppendRatio: nats.relayToAppendRatio,
          natsFedLagP99Ms: nats.lag.p99,
          natsFedLagP50Ms: nats.lag.p50,
        }
      : null,
    orderExpiry: expiry
      ? {
          expiriesPerSec: expiry.expiriesPerSecond,
          writeRatioWhileEveryOrderExpires: expiry.writeRatioWhileExpiring,
          writeRatioInTheWritePhase: write?.ratioAt[32] ?? null,
        }
      : null,
    flood: flood
      ? {
          shopperP99RatioFloodedToAlone: flood.limited.p99Ratio,
          shopperP99RatioWithoutTheLimit: flood.unlimited.p99Ratio,
        }
      : null,
    peers: peers
      ? {
          postgraphile: Object.fromEntries(
            (["page", "search", "byId", "byIdHot"] as const).map((read) => [
              read,
              { ratio: peers![read].ratio, oursP99Ms: peers![read].oursP99Ms, theirsP99Ms: peers![read].theirsP99Ms },
            ]),
          ),
        }
      : null,
    separateReadDatabase: split
      ? {
          writeRatio: round(split.write.graphql[32]!.perSecond / split.write.rawSql[32]!.perSecond, 3),
          placeOrderPerSec: split.write.graphql[32]!.perSecond,
          projectionLagP99Ms: split.lag.p99,
          projectionLagP50Ms: split.lag.p50,
        }
      : null,
  };
  const cpus = os.cpus();
  const result = {
    ...headline,
    targets: TARGETS,
    /** Filled in below, with the table printed at the end. */
    targetsMet: [] as {
      metric: string | number;
      value: string | number;
      target: string | number;
      status: string | number;
    }[],
    mode: quick ? "quick" : "full",
    date: new Date().toISOString(),
    durationSeconds: round((Date.now() - started) / 1000, 1),
    machine: {
      cpu: cpus[0]?.model ?? "unknown",
      cores: cpus.length,
      memoryGb: round(os.totalmem() / 2 ** 30, 1),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
      postgres: pgVersion,
      loadAverageAtStart: loadStart.map((l) => round(l, 2)),
      loadAverageAtEnd: loadEnd.map((l) => round(l, 2)),
    },
    settings: { ...settings, products: PRODUCTS, customers: CUSTOMERS, serverDbPoolSize: 20, projectorBatchSize: 500 },
    definitions: {
      writeRatio:
        "placeOrder over HTTP GraphQL orders/s ÷ the same order transaction as raw SQL through pg (tx/s), both at concurrency 32, closed loop",
      projectionLagP99Ms:
        "t(read_changed naming the order reaches a LISTEN client) − t(placeOrder answered right after its commit), open loop at half the GraphQL rate",
      subscriptionP99Ms:
        "t(push received by a graphql-ws client) − t(restockProduct answered right after its commit), over every client and restock",
      readRatio:
        "products(first: 20, filter: {search, inStock: true}) req/s from read tables ÷ the same page computed by joining the write tables (with an index on order_lines(product_id) added for it; without: read.ratioNoIndex)",
      rebuildEventsPerSec:
        "events in the log ÷ seconds to rebuild both projections in one run of `npm run projections -- rebuild catalog orders` (the log read once, the projections applied side by side), while the server serves",
    },
    write,
    projectionLag: lag,
    projectionLagAtQuarterRate: lagQuarter,
    subscriptions,
    read: read && { ...read, naiveMemory: undefined },
    rebuild,
    expiry,
    flood,
    overload,
    curves,
    peerDetails: peers && { ...peers, memory: undefined },
    soak: soakFrom
      ? earlierSoak(soakFrom)
      : soakResult && {
          minutes: soakResult.minutes,
          rssGrowthPct: soakResult.rssGrowthPct,
          lagP99Ms: soakResult.lagP99Ms,
          ratePerSecond: soakResult.ratePerSecond,
          subscribers: soakResult.subscribers,
          readsPerSecond: soakResult.readsPerSecond,
          warmupMinutes: soakResult.warmupMinutes,
          curve: soakResult.curve,
        },
    memory,
    notes: [
      "Shared 2-core machine: the load generator, the server, Postgres (and possibly other engineers' test runs) compete for the same cores; compare figures within one run.",
      ...bench.notes,
    ],
  };

  const outDir = `${ROOT}test/bench/results`;
  mkdirSync(outDir, { recursive: true });
  // Only a complete, unprofiled full run is "latest"; anything else must not overwrite it.
  const partial = only.size < PHASES.length || curvesToRun.size < CURVES.length || profileDir !== undefined;
  const name = quick ? "quick" : partial ? "partial" : "latest";
  const jsonFile = `${outDir}/${name}.json`;
  const svgFile = `${outDir}/${name === "latest" ? "latencies" : `latencies-${name}`}.svg`;
  const curvesFile = `${outDir}/${name === "latest" ? "curves" : `curves-${name}`}.svg`;
  const panels = curvePanels(curves);
  if (panels.length > 0) writeFileSync(curvesFile, curvesSvg(panels, machineLine(result)));
  writeFileSync(svgFile, latencySvg(bench.samples, machineLine(result)));

  const catalogPoints = curves.catalogSize ?? [];
  const catalogGrowth =
    catalogPoints.length > 1 ? round(catalogPoints.at(-1)!.p99Ms / catalogPoints[0]!.p99Ms, 2) : null;
  const catalogGrowthOf = (p99: (p: CatalogPoint) => number) =>
    catalogPoints.length > 1 ? round(p99(catalogPoints.at(-1)!) / p99(catalogPoints[0]!), 2) : null;
  const catalogUncachedGrowth = catalogGrowthOf((p) => p.uncached.search.p99Ms);
  const catalogUnderWritesGrowth = catalogGrowthOf((p) => p.underWrites.search.p99Ms);
  const status: Status = (value, target, higherIsBetter) =>
    value === null ? "not run" : (higherIsBetter ? value >= target : value <= target) ? "met" : "MISSED";
  const rebuildAt1M = curves.rebuild?.find((p) => p.size >= 1_000_000)?.eventsPerSec ?? null;

  const soakShown = result.soak as { minutes: number; rssGrowthPct: number | null } | undefined;
  const targetRows: (string | number)[][] = [
    [
      "writeRatio",
      headline.writeRatio ?? "-",
      `≥ ${TARGETS.writeRatio}`,
      status(headline.writeRatio, TARGETS.writeRatio, true),
    ],
    [
      "projectionLagP99Ms",
      headline.projectionLagP99Ms ?? "-",
      `≤ ${TARGETS.projectionLagP99Ms}`,
      status(headline.projectionLagP99Ms, TARGETS.projectionLagP99Ms, false),
    ],
    ["subscribers", headline.subscribers ?? "-", "1000", ""],
    [
      "subscriptionP99Ms",
      headline.subscriptionP99Ms ?? "-",
      `≤ ${TARGETS.subscriptionP99Ms}`,
      status(headline.subscriptionP99Ms, TARGETS.subscriptionP99Ms, false),
    ],
    [
      "readRatio",
      headline.readRatio ?? "-",
      `≥ ${TARGETS.readRatio}`,
      status(headline.readRatio, TARGETS.readRatio, true),
    ],
    [
      "rebuildEventsPerSec",
      headline.rebuildEventsPerSec ?? "-",
      `≥ ${TARGETS.rebuildEventsPerSec}`,
      status(headline.rebuildEventsPerSec, TARGETS.rebuildEventsPerSec, true),
    ],
    [
      "catalogP99Growth (result cache on)",
      catalogGrowth ?? "-",
      `≤ ${TARGETS.catalogP99Growth}`,
      status(catalogGrowth, TARGETS.catalogP99Growth, false),
    ],
    [
      "catalogP99Growth (no result cache)",
      catalogUncachedGrowth ?? "-",
      `≤ ${TARGETS.catalogP99Growth}`,
      status(catalogUncachedGrowth, TARGETS.catalogP99Growth, false),
    ],
    [
      `catalogP99Growth (the storefront's search, under ${ORDERS_PER_SECOND} orders/s)`,
      catalogUnderWritesGrowth ?? "-",
      `≤ ${TARGETS.catalogP99Growth}`,
      status(catalogUnderWritesGrowth, TARGETS.catalogP99Growth, false),
    ],
    ...subscriberTargetRows(curves.subscribers, status),
    ...logSizeRows(curves.logSize, curves.logSizeInterleaved, status),
    [
      "rebuildEventsPerSec @10⁶",
      rebuildAt1M ?? "-",
      `≥ ${TARGETS.rebuildEventsPerSecAt1M}`,
      status(rebuildAt1M, TARGETS.rebuildEventsPerSecAt1M, true),
    ],
    ...(["page", "search", "byId", "byIdHot"] as const).map((read) => {
      const r = peers?.[read];
      return [
        `peers.postgraphile.${read}`,
        r ? `×${r.ratio}, p99 ${r.oursP99Ms} vs ${r.theirsP99Ms} ms` : "-",
        `≥ ${TARGETS.peerRatio}, p99 ≤`,
        r ? (r.ratio >= TARGETS.peerRatio && r.oursP99Ms <= r.theirsP99Ms ? "met" : "MISSED") : "not run",
      ];
    }),
    [
      `soak RSS growth % (${soakShown?.minutes ?? "-"} min)`,
      soakShown?.rssGrowthPct ?? "-",
      `≤ ${TARGETS.soakRssGrowthPct}`,
      status(soakShown?.rssGrowthPct ?? null, TARGETS.soakRssGrowthPct, false),
    ],
    [
      "floodP99Ratio",
      flood?.limited.p99Ratio ?? "-",
      `≤ ${TARGETS.floodP99Ratio}`,
      status(flood?.limited.p99Ratio ?? null, TARGETS.floodP99Ratio, false),
    ],
  ];
  // Which targets this run met, in the file too.
  result.targetsMet = targetRows.map(([metric, value, target, met]) => ({
    metric: metric!,
    value: value!,
    target: target!,
    status: met!,
  }));
  writeFileSync(jsonFile, JSON.stringify(result, null, 2) + "\n");
  console.log("\n" + table(targetRows, ["metric", "value", "target", ""]));
  const details: (string | number)[][] = [];
  if (write) {
    for (const c of [8, 32]) {
      const g = write.graphql[c]!,
        r = write.rawSql[c]!;
      details.push([
        `placeOrder GraphQL @${c}`,
        `${g.perSecond} orders/s`,
        g.p50,
        g.p99,
        g.completed,
        g.serverCpuMsPerRequest ?? "",
      ]);
      details.push([
        `raw SQL order tx @${c}`,
        `${r.perSecond} tx/s`,
        r.p50,
        r.p99,
        r.completed,
        r.serverCpuMsPerRequest ?? "",
      ]);
    }
  }
  if (lag) {
    details.push([
      `projection lag @${lag.ratePerSecond}/s`,
      "",
      lag.p50,
      lag.p99,
      lag.count,
      lag.serverCpuMsPerOrder ?? "",
    ]);
    details.push([
      "  (from request start)",
      "",
      lag.fromRequestStart.p50,
      lag.fromRequestStart.p99,
      lag.fromRequestStart.count,
    ]);
  }
  if (lagQuarter)
    details.push([
      `projection lag @${lagQuarter.ratePerSecond}/s`,
      "",
      lagQuarter.p50,
      lagQuarter.p99,
      lagQuarter.count,
      lagQuarter.serverCpuMsPerOrder ?? "",
    ]);
  if (subscriptions) {
    details.push([
      `subscription delivery ×${subscriptions.connected}`,
      `${subscriptions.delivered}/${subscriptions.expectedDeliveries} pushes`,
      subscriptions.p50,
      subscriptions.p99,
      subscriptions.count,
    ]);
    details.push([
      "  (from read_changed)",
      "",
      subscriptions.fromReadChanged.p50,
      subscriptions.fromReadChanged.p99,
      subscriptions.fromReadChanged.count,
    ]);
  }
  if (read) {
    for (const [label, r] of [
      [`products() read tables @${read.concurrency}`, read.readTables],
      ["products() naive join", read.naive],
      ["products() naive join + index", read.naiveIndexed],
    ] as const) {
      details.push([label, `${r.perSecond} req/s`, r.p50, r.p99, r.completed, r.serverCpuMsPerRequest ?? ""]);
    }
  }
  if (peers) {
    for (const read of ["page", "search", "byId", "byIdHot"] as const) {
      const r = peers[read];
      details.push([
        `${read}: ours (read tables) @${peers.concurrency}`,
        `${r.oursPerSecond} req/s`,
        r.ours.p50,
        r.ours.p99,
        r.ours.completed,
        r.ours.serverCpuMsPerRequest ?? "",
      ]);
      details.push([
        `${read}: PostGraphile (write tables)`,
        `${r.theirsPerSecond} req/s`,
        r.theirs.p50,
        r.theirs.p99,
        r.theirs.completed,
        r.theirs.serverCpuMsPerRequest ?? "",
      ]);
    }
  }
  if (rebuild) {
    details.push([
      `rebuild ${rebuild.projections.join(" + ")}`,
      `${rebuild.eventsPerSecond} events/s`,
      "",
      "",
      `${rebuild.events} events, ${rebuild.seconds} s`,
    ]);
    for (const p of rebuild.perProjection)
      details.push([`  ${p.name}: batch transactions`, "", "", "", `${p.batchSeconds} s`]);
  }
  if (soakResult)
    console.log(
      "\n" +
        table(
          soakResult.curve.map((m) => [
            m.minute,
            m.rssMb ?? "",
            m.rssMinMb === null ? "" : `${m.rssMinMb}-${m.rssMaxMb}`,
            m.lagP50Ms,
            m.lagP99Ms,
            m.orders,
            m.pushes,
            m.reads,
            m.readErrors,
          ]),
          [
            "soak minute",
            "server RSS MB (median)",
            "least-most",
            "lag p50 ms",
            "lag p99 ms",
            "orders",
            "pushes",
            "catalog reads",
            "failed",
          ],
        ),
    );
  if (details.length)
    console.log("\n" + table(details, ["measurement", "throughput", "p50 ms", "p99 ms", "n", "server CPU ms/req"]));
  console.log(
    "\n" +
      table(
        memory.map((m) => [m.process, m.phase, m.peakRssMb, m.endRssMb ?? "", m.cpuSeconds ?? "", m.wallSeconds]),
        ["process", "phase", "peak RSS MB", "end RSS MB", "CPU s", "wall s"],
      ),
  );
  console.log(
    `\nmachine: ${result.machine.cpu}, ${result.machine.cores} cores, Node ${process.version}, ${pgVersion.split(" on ")[0]}; load average ${loadStart[0]!.toFixed(2)} → ${loadEnd[0]!.toFixed(2)}`,
  );
  for (const note of result.notes) console.log(`note: ${note}`);
  console.log(`\nwrote ${jsonFile.replace(ROOT, "")} and ${svgFile.replace(ROOT, "")} in ${result.durationSeconds} s`);
}

/** Marks a part carried from an earlier run with that run's date; a part it carried itself keeps its own. */
function carriedFrom(date: string) {
  return <P extends { measuredInAnEarlierRun?: string }>(part: P): P => ({
    ...part,
    measuredInAnEarlierRun: part.measuredInAnEarlierRun ?? date,
  });
}

/** The soak block of an earlier run's results, marked with that run's date. */
function earlierSoak(file: string): Record<string, unknown> {
  const earlier = JSON.parse(readFileSync(file, "utf8")) as {
    date: string;
    soak?: ({ measuredInAnEarlierRun?: string } & Record<string, unknown>) | null;
  };
  if (!earlier.soak) throw new Error(`${file} has no soak`);
  return carriedFrom(earlier.date)(earlier.soak);
}

/** The event-log curve and the rebuild of an earlier run's results, each point marked with the date of the run that measured it. */
function earlierLogSize(file: string): Pick<Curves, "logSize" | "logSizeInterleaved" | "rebuild"> {
  const earlier = JSON.parse(readFileSync(file, "utf8")) as { date: string; curves?: Curves };
  const { logSize, logSizeInterleaved, rebuild } = earlier.curves ?? {};
  if (!logSize?.length) throw new Error(`${file} has no event-log curve`);
  const carried = carriedFrom(earlier.date);
  return {
    logSize: logSize.map(carried),
    ...(logSizeInterleaved ? { logSizeInterleaved: carried(logSizeInterleaved) } : {}),
    rebuild: rebuild?.map(carried),
  };
}

type Status = (value: number | null, target: number, higherIsBetter: boolean) => string;

/** The subscriber targets: p99 at 1,000 and at 10,000, with every push delivered. */
function subscriberTargetRows(points: SubscriberPoint[] | undefined, status: Status): (string | number)[][] {
  return [
    [1_000, TARGETS.subscribers1kP99Ms],
    [10_000, TARGETS.subscribers10kP99Ms],
  ].map(([size, target]) => {
    const point = points?.find((p) => p.size === size);
    const allDelivered = point !== undefined && point.delivered === point.expected;
    return [
      `subscribers ${size!.toLocaleString("en")}: p99 ms`,
      point ? `${point.p99Ms}${allDelivered ? "" : ` (${point.delivered}/${point.expected})`}` : "-",
      `≤ ${target}, all delivered`,
      point && !allDelivered ? "MISSED" : status(point?.p99Ms ?? null, target!, false),
    ];
  });
}

/** The event-log targets: lag p99 and write ratio at the largest log within 15 % of the smallest's, either way (shown signed). */
function logSizeRows(
  points: Curves["logSize"],
  interleaved: LogSizeInterleaved | undefined,
  status: Status,
): (string | number)[][] {
  const first = points?.[0],
    last = points && points.length > 1 ? points.at(-1) : undefined;
  const curveDrift = (f: (p: NonNullable<typeof first>) => number) => (first && last ? drift(f(first), f(last)) : null);
  // The drift of the means of the rounds in turns where there are some; else of the curve's points.
  const curveLabel = first && last ? ` (${first.size.toExponential(0)} → ${last.size.toExponential(0)})` : "";
  const label = interleaved
    ? ` (${interleaved.sizes.map((s) => s.toExponential(0)).join(" ↔ ")}, in turns)`
    : curveLabel;
  const rows = [
    [
      "lag p99 drift" + label,
      interleaved?.lagP99Drift ?? curveDrift((p) => p.lagP99Ms) ?? "-",
      `≤ ${TARGETS.logSizeDrift}`,
    ],
    [
      "writeRatio drift" + label,
      interleaved?.writeRatioDrift ?? curveDrift((p) => p.writeRatio) ?? "-",
      `≤ ${TARGETS.logSizeDrift}`,
    ],
  ].map(([name, value, target]) => [
    name!,
    value!,
    target!,
    status(typeof value === "number" ? Math.abs(value) : null, TARGETS.logSizeDrift, false),
  ]);
  // --baseline: the other checkout's drift, for comparison (not a target of this build).
  if (first?.baseline && last?.baseline) {
    const base = (f: (m: NonNullable<LogSizePoint["baseline"]>) => number) =>
      drift(f(first.baseline!), f(last.baseline!));
    rows.push(["lag p99 drift, baseline" + curveLabel, base((m) => m.lagP99Ms), "-", "-"]);
    rows.push(["writeRatio drift, baseline" + curveLabel, base((m) => m.writeRatio), "-", "-"]);
  }
  return rows;
}

function machineLine(result: {
  machine: { cpu: string; cores: number; postgres: string };
  date: string;
  mode: string;
}) {
  return `${result.machine.cpu}, ${result.machine.cores} cores · Node ${process.version} · ${result.machine.postgres.split(" on ")[0]} · ${result.date.slice(0, 10)} · ${result.mode} run`;
}

/** The curves measured, as the charts of curves.svg. */
function curvePanels(curves: Curves): CurvePanel[] {
  const line = <T extends { size: number }>(label: string, points: T[] | undefined, value: (p: T) => number) =>
    points ? [{ label, points: points.map((p) => [p.size, value(p)] as [number, number]) }] : [];
  const panels: CurvePanel[] = [
    {
      title: "Subscribers: delivery (commit → client)",
      unit: "ms",
      series: [
        ...line("p99, everyone watches the product", curves.subscribers, (p) => p.p99Ms),
        ...line("p50, everyone watches the product", curves.subscribers, (p) => p.p50Ms),
        ...line("p99, before (--baseline)", curves.subscribersBaseline, (p) => p.p99Ms),
        ...line("p99, a product page each", curves.productPages, (p) => p.p99Ms),
      ],
      target: { value: TARGETS.subscribers10kP99Ms, label: `10,000: p99 ≤ ${TARGETS.subscribers10kP99Ms} ms` },
    },
    {
      title: "Subscribers: server CPU per 1,000 pushes",
      unit: "ms",
      series: [
        ...line("everyone watches the product", curves.subscribers, (p) => p.cpuMsPer1000Pushes ?? 0),
        ...line("before (--baseline)", curves.subscribersBaseline, (p) => p.cpuMsPer1000Pushes ?? 0),
      ],
    },
    {
      title: "Catalog: products(first: 20) p99",
      unit: "ms",
      series: [
        ...line("search, in stock", curves.catalogSize, (p) => p.p99Ms),
        ...line("plain page", curves.catalogSize, (p) => p.pageP99Ms),
        ...line("search, no result cache", curves.catalogSize, (p) => p.uncached.search.p99Ms),
        ...line("plain page, no result cache", curves.catalogSize, (p) => p.uncached.page.p99Ms),
        ...line("one product by id", curves.catalogSize, (p) => p.cached.byId.p99Ms),
        ...line(
          `search (any stock), ${ORDERS_PER_SECOND} orders/s`,
          curves.catalogSize,
          (p) => p.underWrites.search.p99Ms,
        ),
        ...line(
          `before (--baseline), ${ORDERS_PER_SECOND} orders/s`,
          curves.catalogSize?.every((p) => p.underWritesBaseline) ? curves.catalogSize : undefined,
          (p) => p.underWritesBaseline!.search.p99Ms,
        ),
      ],
    },
    {
      title: "Event log: projection lag p99",
      unit: "ms",
      series: line("commit → read row", curves.logSize, (p) => p.lagP99Ms),
    },
    {
      title: "Event log: write ratio (GraphQL ÷ raw SQL)",
      unit: "ratio",
      series: line("placeOrder @32", curves.logSize, (p) => p.writeRatio),
    },
    {
      title: "Rebuild: events/s",
      unit: "events/s",
      series: line("catalog + orders", curves.rebuild, (p) => p.eventsPerSec),
      target: {
        value: TARGETS.rebuildEventsPerSecAt1M,
        label: `≥ ${TARGETS.rebuildEventsPerSecAt1M.toLocaleString("en")} at 10⁶`,
      },
    },
  ];
  return panels.filter((p) => p.series.some((s) => s.points.length > 0));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
