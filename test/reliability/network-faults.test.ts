import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { freshDatabase, type TestDatabase } from "../support/db";
import { FaultProxy } from "../support/faultProxy";
import { GraphQLClient, token } from "../support/client";
import { eventually } from "../support/wait";
import { freePort } from "../support/ports";
import { CreateProductDocument, PlaceOrderDocument } from "../../src/storefront/generated/graphql";
import { ServerProcess, verifyDatabase } from "./serverProcess";

// A network between the API and Postgres that is slow, silent or resets, through a TCP proxy of
// the test's own (test/support/faultProxy.ts). Postgres itself is the machine's, untouched.
const CLIENTS = 4;
/** No request may take longer than this, whatever the network does (DB deadlines below, plus margin). */
const REQUEST_DEADLINE_MS = 12_000;

let db: TestDatabase;
let proxy: FaultProxy;
let server: ServerProcess;
let productId: string;
beforeAll(async () => {
  db = await freshDatabase();
  const target = new URL(db.url);
  proxy = await FaultProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
  const through = new URL(db.url);
  through.port = String(proxy.port);
  server = new ServerProcess(through.toString(), await freePort(), {
    DB_QUERY_TIMEOUT_MS: "3000",
    DB_CONNECT_TIMEOUT_MS: "2000",
    READ_YOUR_WRITES_TIMEOUT_MS: "3000",
  });
  await server.start();
  const created = await new GraphQLClient(server.url).as(token("admin", "ops")).ok(CreateProductDocument, {
    input: { sku: `NET-${randomUUID().slice(0, 8)}`, name: "Network test", priceCents: 300, initialStock: 1_000_000 },
  });
  productId = created.createProduct.product!.id;
});
afterAll(async () => {
  await server?.stop();
  await proxy?.stop();
  await db?.drop();
});

interface Outcome {
  ms: number;
  ok: boolean;
  retryable: boolean;
  hung: boolean;
}

/** Clients placing orders (a new key each, answered or not) until stopped; every outcome timed. */
function orderLoad(label: string) {
  const outcomes: Outcome[] = [];
  let running = true;
  const clients = Array.from({ length: CLIENTS }, async (_, i) => {
    const me = new GraphQLClient(server.url).as(token("customer", `net-${label}-${i}`));
    while (running) {
      const started = performance.now();
      const answer = await Promise.race([
        me.request(PlaceOrderDocument, {
          input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] },
        }),
        delay(REQUEST_DEADLINE_MS).then(() => undefined),
      ]);
      const error = answer?.errors?.[0]?.extensions;
      outcomes.push({
        ms: performance.now() - started,
        ok: !!answer?.data?.placeOrder && !answer.errors,
        retryable: error?.retryable === true,
        hung: answer === undefined,
      });
      if (!answer || answer.errors) await delay(50); // a client backs off a little after a failure
    }
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(clients);
    },
  };
}

/** /readyz's status, or 0 when it did not answer within 3 s (it must: it has a 2 s deadline of its own). */
const readiness = () =>
  fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(3000) }).then(
    async (r) => (await r.arrayBuffer(), r.status),
    () => 0,
  );

/** A scrape of /metrics: its status (0: no answer within 3 s) and how old its projection figures are. */
const scrape = () =>
  fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(3000) }).then(
    async (r) => {
      const age = /^shop_metrics_read_age_seconds\{read="projections"\} (\S+)$/m.exec(await r.text());
      return { status: r.status, age: age ? Number(age[1]) : undefined };
    },
    () => ({ status: 0, age: undefined }),
  );

async function recovered(load: ReturnType<typeof orderLoad>) {
  await eventually(async () => (await readiness()) === 200, { timeoutMs: 30_000, what: "/readyz to say ready" });
  const okBefore = load.outcomes.filter((o) => o.ok).length;
  await eventually(() => load.outcomes.filter((o) => o.ok).length > okBefore + CLIENTS, {
    timeoutMs: 30_000,
    what: "orders to be accepted again",
  });
}

describe("a slow, silent or resetting network between the API and Postgres", () => {
  it(
    "200 ms of added latency: orders still go through, none hangs, /readyz answers, verify agrees",
    { timeout: 90_000 },
    async () => {
      const load = orderLoad("slow");
      try {
        await eventually(() => load.outcomes.filter((o) => o.ok).length >= 10, { what: "orders before the fault" });
        proxy.latencyMs = 200;
        const okBefore = load.outcomes.filter((o) => o.ok).length;
        await eventually(() => load.outcomes.filter((o) => o.ok).length >= okBefore + 2 * CLIENTS, {
          timeoutMs: 30_000,
          what: "orders through the slow network",
        });
        expect(await readiness()).not.toBe(0);
        proxy.latencyMs = 0;
        await recovered(load);
      } finally {
        proxy.latencyMs = 0;
        await load.stop();
      }
      expect(load.outcomes.filter((o) => o.hung)).toEqual([]);
      expect((await verifyDatabase(db.url)).problems).toEqual([]);
    },
  );

  it(
    "10 s of silence (bytes dropped, connections left open): requests fail within their deadline, retryable; /readyz says not ready; it recovers by itself; verify agrees",
    { timeout: 120_000 },
    async () => {
      const load = orderLoad("silent");
      const readyDuring: number[] = [];
      const scrapesDuring: Awaited<ReturnType<typeof scrape>>[] = [];
      try {
        await eventually(() => load.outcomes.filter((o) => o.ok).length >= 10, { what: "orders before the fault" });
        expect(await scrape()).toEqual({ status: 200, age: 0 });
        const from = load.outcomes.length;
        proxy.silent = true;
        const until = Date.now() + 10_000;
        while (Date.now() < until) {
          const [ready, scraped] = await Promise.all([readiness(), scrape()]);
          readyDuring.push(ready);
          scrapesDuring.push(scraped);
          await delay(500);
        }
        proxy.silent = false;
        const during = load.outcomes.slice(from);
        expect(during.some((o) => !o.ok)).toBe(true);
        expect(during.filter((o) => !o.ok && !o.retryable && !o.hung)).toEqual([]); // each failure says: retry
        await recovered(load);
      } finally {
        proxy.silent = false;
        await load.stop();
      }
      expect(load.outcomes.filter((o) => o.hung)).toEqual([]);
      expect(readyDuring).not.toContain(0); // /readyz always answered…
      expect(readyDuring).toContain(503); // …and said not ready
      // /metrics always answered too, with the last projection figures and how old they are.
      expect(scrapesDuring.filter((s) => s.status !== 200)).toEqual([]);
      expect(scrapesDuring.some((s) => s.age! > 0)).toBe(true);
      expect((await verifyDatabase(db.url)).problems).toEqual([]);
    },
  );

  it(
    "connections reset under load: failures are retryable, it recovers by itself, verify agrees",
    { timeout: 90_000 },
    async () => {
      const load = orderLoad("reset");
      try {
        for (let round = 0; round < 3; round++) {
          const okBefore = load.outcomes.filter((o) => o.ok).length;
          await eventually(() => load.outcomes.filter((o) => o.ok).length >= okBefore + 10, {
            timeoutMs: 30_000,
            what: "orders before the reset",
          });
          proxy.resetAll();
        }
        await recovered(load);
      } finally {
        await load.stop();
      }
      expect(load.outcomes.filter((o) => o.hung)).toEqual([]);
      expect(load.outcomes.filter((o) => !o.ok && !o.retryable)).toEqual([]);
      const result = await verifyDatabase(db.url);
      expect(result.problems).toEqual([]);
      const failed = load.outcomes.filter((o) => !o.ok).length;
      console.log(
        `network faults: ${load.outcomes.length} orders sent through 3 rounds of resets, ${failed} failed (all retryable); verify: ${result.counts.events} events, 0 problems`,
      );
    },
  );
});
