import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { GraphQLClient, token, type GqlResponse } from "../support/client";
import { eventually } from "../support/wait";
import { freePort } from "../support/ports";
import { startPrimary, stopAll, type PgPrimary } from "../support/pgCluster";
import { CreateProductDocument, PlaceOrderDocument } from "../../src/storefront/generated/graphql";
import { DEFAULT_READ_YOUR_WRITES_TIMEOUT_MS } from "../../src/config";
import { ServerProcess, untilAnswered, verifyDatabase } from "./serverProcess";

// Postgres itself restarted and crashed under order load. The machine's shared cluster is never
// touched: the test runs its own (initdb into a temporary folder, on a free port).
const CLIENTS = 6;
/** A request during the outage must fail within this (connection refused or cut: at once). */
const FAIL_FAST_MS = 5_000;
/** The API must be ready again within this after Postgres accepts connections. */
const READY_WITHIN_MS = 5_000;

let primary: PgPrimary;
let server: ServerProcess;
let productId: string;
beforeAll(async () => {
  primary = await startPrimary();
  server = new ServerProcess(primary.url(), await freePort(), {
    DB_POOL_SIZE: "8",
    // This cluster is the test's own, so no other file's open transaction holds its projector back
    // (the reason for the tests' longer wait): the shipped default. A longer wait would keep the
    // clients whose orders committed just before the fault waiting for their read-back, sending
    // nothing, through the outage this test needs them to meet.
    READ_YOUR_WRITES_TIMEOUT_MS: String(DEFAULT_READ_YOUR_WRITES_TIMEOUT_MS),
  });
  await server.start();
  const created = await new GraphQLClient(server.url).as(token("admin", "ops")).ok(CreateProductDocument, {
    input: { sku: `PGR-${randomUUID().slice(0, 8)}`, name: "Restart test", priceCents: 300, initialStock: 1_000_000 },
  });
  productId = created.createProduct.product!.id;
});
afterAll(async () => {
  await server?.stop();
  await stopAll();
});

interface Attempt {
  ms: number;
  /** Failed with the database: its outcome is unknown, and the answer must say to retry. */
  lost: boolean;
  retryable: boolean;
}

const FAULTS: { name: string; cut: () => Promise<void> }[] = [
  { name: "a fast restart (pg_ctl stop -m fast, then start)", cut: () => primary.stop() },
  { name: "a crash (pg_ctl stop -m immediate, then start)", cut: () => primary.kill() },
];

describe("Postgres restarted or crashed under order load", () => {
  for (const fault of FAULTS)
    it(
      `${fault.name}: fails fast and retryable meanwhile, is ready within 5 s, loses and doubles nothing`,
      { timeout: 120_000 },
      async () => {
        const keys: { customer: string; key: string; quantity: number; accepted?: boolean }[] = [];
        const attempts: Attempt[] = [];
        const unexpected: string[] = [];
        let answered = 0;
        let loadDone = false;
        const client = async (i: number) => {
          const customer = `pgr-${fault.name.slice(2, 7)}-${i}`;
          const me = new GraphQLClient(server.url).as(token("customer", customer));
          for (let n = 0; !loadDone && n < 5000; n++) {
            const entry = { customer, key: `pgr-${i}-${n}`, quantity: 1 + (n % 3), accepted: false };
            keys.push(entry);
            const res = await untilAnswered(
              async () => {
                const started = performance.now();
                const answer = await me.request(PlaceOrderDocument, {
                  input: { idempotencyKey: entry.key, lines: [{ productId, quantity: entry.quantity }] },
                });
                const error = answer.errors?.[0]?.extensions;
                const lost = answer.status >= 500 || error?.code === "INTERNAL_SERVER_ERROR";
                attempts.push({ ms: performance.now() - started, lost, retryable: error?.retryable === true });
                return answer;
              },
              { retries: 0 },
              {
                unknown: (r: GqlResponse<unknown>) =>
                  r.status >= 500 || !!r.errors?.some((e) => e.extensions?.code === "INTERNAL_SERVER_ERROR"),
              },
            );
            answered += 1;
            if (res.data?.placeOrder && !res.errors) entry.accepted = true;
            else unexpected.push(`${entry.key}: ${JSON.stringify(res.errors)}`);
          }
        };
        const load = Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));

        let readyAfterMs = Number.NaN;
        let down = false;
        try {
          const before = answered;
          await eventually(() => answered >= before + 30, { timeoutMs: 30_000, what: "orders before the fault" });
          down = true;
          await fault.cut();
          const lostBefore = attempts.filter((a) => a.lost).length;
          await delay(1000); // an outage of a second: the clients keep sending meanwhile
          await eventually(() => attempts.filter((a) => a.lost).length > lostBefore, {
            what: "requests to fail while Postgres is down",
          });
          await primary.start(); // resolves once it accepts connections
          down = false;
          const upAt = performance.now();
          await eventually(
            async () => (await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200,
            { timeoutMs: 30_000, intervalMs: 20, what: "/readyz to say ready" },
          ).catch(async (error: unknown) => {
            const health = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
              (r) => r.status,
              (e: Error) => e.message,
            );
            throw new Error(`${String(error)}; /healthz: ${health}; the server wrote:\n${server.output()}`);
          });
          readyAfterMs = performance.now() - upAt;
          const after = answered;
          await eventually(() => answered > after + CLIENTS, { timeoutMs: 30_000, what: "orders after the fault" });
        } finally {
          loadDone = true;
          // A failure while it was down leaves it up again for the next test of this file.
          if (down) await primary.start().catch(() => undefined);
          await load;
        }

        expect(unexpected).toEqual([]);
        const lost = attempts.filter((a) => a.lost);
        expect(lost.length).toBeGreaterThan(0);
        expect(lost.filter((a) => !a.retryable)).toEqual([]); // each said: retry with the same key
        expect(Math.max(...lost.map((a) => a.ms))).toBeLessThan(FAIL_FAST_MS);
        expect(readyAfterMs).toBeLessThan(READY_WITHIN_MS);

        // Every order confirmed to a client is there, once; nothing else is.
        const accepted = keys.filter((k) => k.accepted);
        const db = new pg.Client({ connectionString: primary.url() });
        await db.connect();
        try {
          const { rows } = await db.query<{ actor_id: string; key: string }>(
            `SELECT actor_id, key FROM "write".command_keys WHERE command = 'placeOrder' AND key LIKE 'pgr-%' AND actor_id LIKE $1`,
            [`pgr-${fault.name.slice(2, 7)}-%`],
          );
          expect(rows.map((r) => `${r.actor_id}/${r.key}`).sort()).toEqual(
            accepted.map((k) => `${k.customer}/${k.key}`).sort(),
          );
        } finally {
          await db.end();
        }
        // The read side agrees with the log, each event applied once (the projector's batches
        // commit asynchronously: those lost in a crash are applied again, from their checkpoint).
        const result = await verifyDatabase(primary.url());
        expect(result.problems).toEqual([]);
        console.log(
          `postgres ${fault.name}: ${accepted.length} orders accepted under ${CLIENTS} clients; ${lost.length} requests failed meanwhile, all retryable, the slowest in ${Math.round(Math.max(...lost.map((a) => a.ms)))} ms; ready ${Math.round(readyAfterMs)} ms after Postgres accepted connections; verify: ${result.counts.events} events, 0 problems`,
        );
      },
    );
});
