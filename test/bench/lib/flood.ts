import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { print } from "graphql";
import { PlaceOrderDocument, ProductsDocument } from "../../../src/storefront/generated/graphql";
import { Worker } from "node:worker_threads";
import { HttpGraphQL } from "./http";
import type { FlooderReport, FlooderWorkerData } from "./flooder.worker";
import type { Bench, Server, StartServer } from "./phases";
import { round, summarize } from "./stats";
import { SERVER } from "./processes";

export interface FloodRun {
  /** The well-behaved client's latency, alone and while the flooder floods (ms). */
  aloneP50Ms: number;
  aloneP99Ms: number;
  floodedP50Ms: number;
  floodedP99Ms: number;
  /** floodedP99 ÷ aloneP99: the target is at most 2. */
  p99Ratio: number;
  /** What the flooder got: mutations run, refused with 429, per second sent. */
  flooderAccepted: number;
  flooderRefused: number;
  flooderSentPerSec: number;
}

export interface FloodResult {
  /** MUTATIONS_PER_SECOND at its default (20 per actor, burst 40). */
  limited: FloodRun;
  /** The same with MUTATIONS_PER_SECOND=0 and MUTATION_CONCURRENCY=0: what the limits buy. */
  unlimited: FloodRun;
}

const PLACE_ORDER = print(PlaceOrderDocument);
const PRODUCTS = print(ProductsDocument);

/**
 * One customer floods placeOrder from 64 connections as fast as the server answers; another
 * customer shops at a steady 20 requests/s (a catalog page, then an order, in turn: 10 orders/s,
 * under its own limit). The well-behaved client's latency is measured alone, then during the
 * flood, on the same server; once with the mutation limits on (rate and concurrency), once off.
 */
export async function floodPhase(
  bench: Bench,
  startServer: StartServer,
  stopServer: (server: Server) => Promise<void>,
  seconds: number,
): Promise<FloodResult> {
  const limited = await floodRun(bench, startServer, stopServer, seconds, {});
  bench.log(
    `  limited: the shopper's p99 ${limited.aloneP99Ms} ms alone, ${limited.floodedP99Ms} ms flooded (×${limited.p99Ratio}); the flooder got ${limited.flooderAccepted} accepted, ${limited.flooderRefused} refused (429), sending ${limited.flooderSentPerSec}/s`,
  );
  const unlimited = await floodRun(bench, startServer, stopServer, seconds, {
    MUTATIONS_PER_SECOND: "0",
    MUTATION_CONCURRENCY: "0",
  });
  bench.log(
    `  unlimited: the shopper's p99 ${unlimited.aloneP99Ms} ms alone, ${unlimited.floodedP99Ms} ms flooded (×${unlimited.p99Ratio}); the flooder got ${unlimited.flooderAccepted} accepted`,
  );
  return { limited, unlimited };
}

async function floodRun(
  bench: Bench,
  startServer: StartServer,
  stopServer: (server: Server) => Promise<void>,
  seconds: number,
  env: Record<string, string>,
): Promise<FloodRun> {
  const server = await startServer(
    `server (flood${env.MUTATIONS_PER_SECOND === "0" ? ", no mutation limits" : ""})`,
    SERVER,
    env,
  );
  const product = bench.products[0]!;
  const shopperToken = bench.customerTokens[0]!;
  const flooderToken = bench.customerTokens[1]!;
  const order = () =>
    JSON.stringify({
      query: PLACE_ORDER,
      variables: { input: { idempotencyKey: randomUUID(), lines: [{ productId: product.id, quantity: 1 }] } },
    });
  const page = JSON.stringify({ query: PRODUCTS, variables: { first: 20 } });

  const shopper = new HttpGraphQL(server.url, 4);
  /** The shopper at 20 requests/s for `seconds`: the latency of each request (ms). */
  const shop = async () => {
    const latencies: number[] = [];
    const start = performance.now();
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < seconds * 20; i++) {
      const wait = start + i * 50 - performance.now();
      if (wait > 1) await sleep(wait);
      const t0 = performance.now();
      inFlight.push(
        shopper.post(i % 2 === 0 ? page : order(), shopperToken).then((res) => {
          if (res.status !== 200 || res.errors?.length)
            throw new Error(`the shopper's request failed (${res.status}): ${JSON.stringify(res.errors)}`);
          latencies.push(performance.now() - t0);
        }),
      );
    }
    await Promise.all(inFlight);
    return summarize(latencies);
  };

  await shop(); // warm-up
  const alone = await shop();

  const flooder = new Worker(new URL("./flooder.worker.mjs", import.meta.url), {
    workerData: {
      url: server.url,
      token: flooderToken,
      productId: bench.products[1]!.id, // not the shopper's: the flood, not a hot row, is measured
      query: PLACE_ORDER,
      connections: 64,
    } satisfies FlooderWorkerData,
  });
  const report = new Promise<FlooderReport>((resolve, reject) => {
    flooder.once("message", resolve);
    flooder.once("error", reject);
  });
  await sleep(1000); // the flood under way
  const flooded = await shop();
  flooder.postMessage("stop");
  const { accepted, refused, seconds: floodSeconds } = await report;
  await flooder.terminate();
  shopper.close();
  await stopServer(server);
  return {
    aloneP50Ms: alone.p50,
    aloneP99Ms: alone.p99,
    floodedP50Ms: flooded.p50,
    floodedP99Ms: flooded.p99,
    p99Ratio: round(flooded.p99 / alone.p99, 2),
    flooderAccepted: accepted,
    flooderRefused: refused,
    flooderSentPerSec: round((accepted + refused) / floodSeconds, 0),
  };
}
