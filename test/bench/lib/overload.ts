import { closedLoop, openLoop } from "./load";
import { setTimeout as sleep } from "node:timers/promises";
import { getText, HttpGraphQL } from "./http";
import { placeOrderBody, type Bench, type Server, type StartServer } from "./phases";
import { round, summarize, type LatencySummary } from "./stats";
import { SERVER } from "./processes";
import { DEFAULT_MUTATION_QUEUE_MS } from "../../../src/config";

const PRODUCTS_PAGE = JSON.stringify({ query: "{ products(first: 1) { totalCount } }" });

export interface OverloadRun {
  /** MUTATION_QUEUE_MS of the server (0: never shed). */
  mutationQueueMs: number;
  offeredPerSec: number;
  /** Orders placed per second, from the first sent to the last answered: the goodput. */
  placedPerSec: number;
  /** Latency of the placed orders, from when each was due to be sent (ms). */
  placed: LatencySummary;
  /** Refused with OVERLOADED (HTTP 503): how many, and how fast the refusal came. */
  shed: number;
  shedLatency: LatencySummary | null;
  /** Anything else: failed requests (a timeout waiting for a connection, say), by code. */
  failed: Record<string, number>;
  failedLatency: LatencySummary | null;
  /**
   * /readyz asked every READY_EVERY_MS from the first order sent to the last answered, as a load
   * balancer's health check does: how many times, and how many answered other than 200 (a
   * balancer would take the instance out), with the first reason.
   */
  readyChecks: number;
  notReady: number;
  notReadyReason: string | null;
  /**
   * /metrics scraped every READY_EVERY_MS likewise: how long each scrape took (ms), how many
   * failed, and the oldest values it showed (`shop_metrics_read_age_seconds`, max; -1: a scrape
   * that had none yet).
   */
  scrapes: number;
  scrapeFailed: number;
  scrapeLatency: LatencySummary | null;
  scrapeReadAgeMaxSeconds: number | null;
}

/** A health check or a scrape, asked every READY_EVERY_MS while `running()`, as a load balancer or Prometheus would. */
async function probe(url: string, running: () => boolean) {
  const seen = {
    checks: 0,
    failed: 0,
    reason: null as string | null,
    latencies: [] as number[],
    texts: [] as string[],
  };
  while (running()) {
    const sent = performance.now();
    const answer = await getText(url).catch((error: Error) => ({ status: 0, text: error.message }));
    seen.latencies.push(performance.now() - sent);
    seen.checks += 1;
    if (answer.status !== 200) {
      seen.failed += 1;
      seen.reason ??= answer.text.slice(0, 200);
    } else seen.texts.push(answer.text);
    await sleep(READY_EVERY_MS);
  }
  return seen;
}

/** The largest value of a metric's samples over scrapes' texts (null when none has it). */
function largest(texts: string[], name: string): number | null {
  const values = texts.flatMap((text) =>
    text
      .split("\n")
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .map((line) => Number(line.slice(line.lastIndexOf(" ") + 1))),
  );
  return values.length ? Math.max(...values) : null;
}

export interface OverloadResult {
  /** placeOrder at 32 clients, closed loop, on the first server: what "twice the capacity" is twice of. */
  capacityPerSec: number;
  runs: OverloadRun[];
}

/** The shipped MUTATION_QUEUE_MS, and 0 (never shed), side by side. */
const SETTINGS = [DEFAULT_MUTATION_QUEUE_MS, 0];
const OFFERED_TIMES_CAPACITY = 2;
/**
 * Connections to the server, opened before the run and kept (as a load balancer keeps its pool
 * to a backend): requests beyond them wait their turn in the client, and that wait counts in
 * their latency. (Thousands of connections opened at once overflow the server's accept queue,
 * and the kernel's retries of dropped connections, seconds apart, would be what is measured.)
 */
const CONNECTIONS = 1024;
const READY_EVERY_MS = 500;

/**
 * A flash sale: orders from many customers arriving at twice what the server places (open loop,
 * so a slow server is not sent less), with the per-actor limits off so that only the aggregate
 * is measured. Once with shedding at its default and once without, on fresh servers.
 */
export async function overloadPhase(
  bench: Bench,
  startServer: StartServer,
  stopServer: (server: Server) => Promise<void>,
  seconds: number,
): Promise<OverloadResult> {
  let capacityPerSec = 0;
  const runs: OverloadRun[] = [];
  for (const mutationQueueMs of SETTINGS) {
    const server = await startServer(`server (overload, MUTATION_QUEUE_MS=${mutationQueueMs})`, SERVER, {
      MUTATION_QUEUE_MS: String(mutationQueueMs),
      MUTATIONS_PER_SECOND: "0",
      MUTATION_CONCURRENCY: "0",
    });
    const tokens = bench.customerTokens;
    const gql = new HttpGraphQL(server.url, CONNECTIONS);
    try {
      await Promise.all(Array.from({ length: CONNECTIONS }, () => gql.post(PRODUCTS_PAGE)));
      if (capacityPerSec === 0) {
        const measured = await closedLoop({
          concurrency: 32,
          warmupMs: 2000,
          durationMs: 5000,
          task: async (n) => {
            const res = await gql.post(placeOrderBody(bench.products, n), tokens[n % tokens.length]);
            if (res.status !== 200 || res.errors?.length) throw new Error(`placeOrder failed (${res.status})`);
          },
        });
        capacityPerSec = round(measured.perSecond, 0);
        bench.log(`  capacity: ${capacityPerSec} orders/s at 32 clients`);
      }
      const offeredPerSec = Math.round(capacityPerSec * OFFERED_TIMES_CAPACITY);
      const placed: number[] = [];
      const shed: number[] = [];
      const failedLatencies: number[] = [];
      const failed: Record<string, number> = {};
      const started = performance.now();
      let probing = true;
      const readiness = probe(`${server.url}/readyz`, () => probing);
      const scraping = probe(`${server.url}/metrics`, () => probing);
      await openLoop({
        ratePerSecond: offeredPerSec,
        durationMs: seconds * 1000,
        maxInFlight: 100_000,
        task: async (n) => {
          const due = started + (n * 1000) / offeredPerSec;
          let code: string;
          try {
            const res = await gql.post(placeOrderBody(bench.products, n), tokens[n % tokens.length]);
            code =
              res.status === 200 && !res.errors?.length
                ? "OK"
                : (res.errors?.[0]?.extensions?.code ?? `HTTP ${res.status}`);
          } catch (error) {
            code = (error as NodeJS.ErrnoException).code ?? "socket error";
          }
          const ms = performance.now() - due;
          if (code === "OK") placed.push(ms);
          else if (code === "OVERLOADED") shed.push(ms);
          else {
            failed[code] = (failed[code] ?? 0) + 1;
            failedLatencies.push(ms);
          }
        },
      });
      const elapsed = (performance.now() - started) / 1000;
      probing = false;
      const [ready, scrapes] = await Promise.all([readiness, scraping]);
      const run: OverloadRun = {
        mutationQueueMs,
        offeredPerSec,
        placedPerSec: round(placed.length / elapsed, 0),
        placed: summarize(placed),
        shed: shed.length,
        shedLatency: shed.length ? summarize(shed) : null,
        failed,
        failedLatency: failedLatencies.length ? summarize(failedLatencies) : null,
        readyChecks: ready.checks,
        notReady: ready.failed,
        notReadyReason: ready.reason,
        scrapes: scrapes.checks,
        scrapeFailed: scrapes.failed,
        scrapeLatency: scrapes.latencies.length ? summarize(scrapes.latencies) : null,
        scrapeReadAgeMaxSeconds: largest(scrapes.texts, "shop_metrics_read_age_seconds"),
      };
      runs.push(run);
      bench.log(
        `  MUTATION_QUEUE_MS=${mutationQueueMs}: offered ${offeredPerSec}/s, placed ${run.placedPerSec}/s (p50 ${run.placed.p50} ms, p99 ${run.placed.p99} ms); shed ${run.shed}${run.shedLatency ? ` (p99 ${run.shedLatency.p99} ms)` : ""}; failed ${JSON.stringify(failed)}${run.failedLatency ? ` (p50 ${run.failedLatency.p50} ms)` : ""}; /readyz not ready ${run.notReady} of ${run.readyChecks}${run.notReadyReason ? ` (${run.notReadyReason})` : ""}; /metrics ${run.scrapes} scrapes, ${run.scrapeFailed} failed, p50 ${run.scrapeLatency?.p50} ms, max ${run.scrapeLatency?.max} ms, oldest values ${run.scrapeReadAgeMaxSeconds} s`,
      );
    } finally {
      gql.close();
      await stopServer(server);
    }
  }
  return { capacityPerSec, runs };
}
