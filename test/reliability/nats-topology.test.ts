import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { promisify } from "node:util";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, GraphQLClient, token } from "../support/client";
import { freshDatabase, type TestDatabase } from "../support/db";
import { streamMatchesLog } from "../support/eventStream";
import { startNats, stopAllNats, type NatsServer } from "../support/natsServer";
import { freePort } from "../support/ports";
import { eventually } from "../support/wait";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  PlaceOrderDocument,
  ProjectionsDocument,
} from "../../src/storefront/generated/graphql";
import { ServerProcess, verifyDatabase } from "./serverProcess";

// The event log on NATS JetStream feeding a query service of its own, as three OS processes:
//   commands   SERVICES=commands                  DATABASE_URL (+ READ_DATABASE_URL, for its payloads)
//   relay      SERVICES=relay                     DATABASE_URL, EVENTS_NATS_URL
//   query      SERVICES=queries,projector         READ_DATABASE_URL, EVENTS_NATS_URL, PROJECTOR_SOURCE=nats
//              (no DATABASE_URL: it never connects to the write database)

const run = promisify(execFile);

let writeDb: TestDatabase;
let readDb: TestDatabase;
let nats: NatsServer;
const servers: Record<"commands" | "relay" | "query", ServerProcess> = {} as never;
const sockets: Client[] = [];

beforeAll(async () => {
  [writeDb, readDb, nats] = await Promise.all([
    freshDatabase({ empty: true }),
    freshDatabase({ empty: true }),
    startNats(),
  ]);
  servers.commands = new ServerProcess(writeDb.url, await freePort(), {
    SERVICES: "commands",
    READ_DATABASE_URL: readDb.url,
    INSTANCE_ID: "commands",
  });
  await servers.commands.start(); // migrates both databases
  servers.relay = new ServerProcess(writeDb.url, await freePort(), {
    SERVICES: "relay",
    EVENTS_NATS_URL: nats.url,
    INSTANCE_ID: "relay",
  });
  servers.query = new ServerProcess("", await freePort(), {
    SERVICES: "queries,projector",
    PROJECTOR_SOURCE: "nats",
    EVENTS_NATS_URL: nats.url,
    READ_DATABASE_URL: readDb.url,
    INSTANCE_ID: "query",
  });
  await Promise.all([servers.relay.start(), servers.query.start()]);
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.dispose()));
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  await Promise.all([writeDb?.drop(), readDb?.drop()]);
  await stopAllNats();
});

const api = (name: keyof typeof servers) => new GraphQLClient(servers[name].url);

async function verified(): Promise<void> {
  const result = await verifyDatabase(writeDb.url, readDb.url);
  expect(result.problems).toEqual([]);
  expect(result.ok).toBe(true);
}

describe("a query service fed from the event stream alone", () => {
  it("pushes to its subscriber an order placed on the commands instance, and verify agrees", async () => {
    const sku = `NT-${randomUUID().slice(0, 8)}`;
    const { createProduct } = await api("commands")
      .as(token("admin", "ops"))
      .ok(CreateProductDocument, { input: { sku, name: `Product ${sku}`, priceCents: 700, initialStock: 9 } });
    // the payload: read back from the read database, which the NATS-fed projector filled
    expect(createProduct.product).toMatchObject({ sku, available: 9 });
    const productId = createProduct.product!.id;

    const socket = api("query").ws();
    sockets.push(socket);
    const pushed = collect(socket, InventoryChangedDocument, { productIds: [productId] });
    // the subscription is live on the server (its gauge counts it), so no change can slip by before it
    await eventually(
      async () => /^shop_graphql_subscriptions [1-9]/m.test(await (await fetch(`${servers.query.url}/metrics`)).text()),
      { what: "the subscription to be live" },
    );

    const { placeOrder } = await api("commands")
      .as(token("customer", "nt-buyer"))
      .ok(PlaceOrderDocument, { input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 4 }] } });
    expect(placeOrder.order).toMatchObject({ status: "PLACED", itemCount: 4 });
    await eventually(() => pushed.results.some((r) => r.data?.inventoryChanged.available === 5), {
      what: "the subscriber on the query service to hear of the order",
    });

    const { projections } = await api("query").as(token("admin", "ops")).ok(ProjectionsDocument, {});
    expect(projections.map((p) => p.leader)).toEqual(["query", "query"]);
    expect(await streamMatchesLog([nats.url], writeDb)).toMatchObject({ ok: true });
    await verified();
  });

  // Its waits: the payloads' read-your-writes, a process start, the catch-up (15 s at most).
  it(
    "catches up after the query service is killed with -9 and started again: its read tables match verify",
    { timeout: 60_000 },
    async () => {
      await servers.query.kill9();
      const admin = api("commands").as(token("admin", "ops"));
      // the payloads wait for a projector that is down: they come back null, the writes are done
      await Promise.all(
        Array.from({ length: 5 }, async (_, i) => {
          const sku = `NT-K-${i}-${randomUUID().slice(0, 6)}`;
          await admin.ok(CreateProductDocument, {
            input: { sku, name: `Product ${sku}`, priceCents: 100, initialStock: i },
          });
        }),
      );
      await servers.query.start();
      await eventually(
        async () => {
          const { projections } = await api("query").as(token("admin", "ops")).ok(ProjectionsDocument, {});
          return projections.every((p) => p.lagEvents === 0 && p.lagMeasuredAt !== null);
        },
        { timeoutMs: 15_000, what: "the query service to catch up" },
      );
      await verified();
    },
  );

  // The CLI runs under tsx, with 60 s of its own.
  it(
    "rebuilds its projections from the stream with the projections CLI, without the write database",
    { timeout: 90_000 },
    async () => {
      const rows = () => readDb.sql(`SELECT id, available, units_sold FROM "read"."products" ORDER BY id`);
      const before = await rows();
      const { stdout } = await run(
        process.execPath,
        ["--import", "tsx", "scripts/projections.ts", "rebuild", "--all"],
        {
          cwd: resolve(import.meta.dirname, "../.."),
          env: {
            ...process.env,
            DATABASE_URL: "",
            READ_DATABASE_URL: readDb.url,
            SERVICES: "queries,projector",
            PROJECTOR_SOURCE: "nats",
            EVENTS_NATS_URL: nats.url,
            LOG_LEVEL: "silent",
          },
          timeout: 60_000,
        },
      );
      expect(stdout).toMatch(/rebuilt catalog, orders: \d+ events/);
      expect(await rows()).toEqual(before);
      await verified();
    },
  );
});
