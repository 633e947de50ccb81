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
      const ready = { checks: 0, failed: 0, reason: null as string | null };
      let probing = true;
      const readiness = (async () => {
        while (probing) {
          const answer = await getText(`${server.url}/readyz`).catch((error: Error) => ({
            status: 0,
            text: error.message,
          }));
          ready.checks += 1;
          if (answer.status !== 200) {
            ready.failed += 1;
            ready.reason ??= answer.text.slice(0, 200);
          }
          await sleep(READY_EVERY_MS);
        }
      })();
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
      await readiness;
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
      };
      runs.push(run);
      bench.log(
        `  MUTATION_QUEUE_MS=${mutationQueueMs}: offered ${offeredPerSec}/s, placed ${run.placedPerSec}/s (p50 ${run.placed.p50} ms, p99 ${run.placed.p99} ms); shed ${run.shed}${run.shedLatency ? ` (p99 ${run.shedLatency.p99} ms)` : ""}; failed ${JSON.stringify(failed)}${run.failedLatency ? ` (p50 ${run.failedLatency.p50} ms)` : ""}; /readyz not ready ${run.notReady} of ${run.readyChecks}${run.notReadyReason ? ` (${run.notReadyReason})` : ""}`,
      );
    } finally {
      gql.close();
      await stopServer(server);
    }
  }
  return { capacityPerSec, runs };
}
