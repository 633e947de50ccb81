import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { createLogger } from "../../src/logger";
import { EventStream, isTailMoved } from "../../src/relay/eventStream";
import { Relay } from "../../src/relay/relay";
import { natsSource } from "../../src/projection/natsSource";
import { LOG_START, type RecordedEvent } from "../../src/shared/events";
import { startTestApp, type TestApp } from "../support/app";
import { committedEventsAfter, freshDatabase, type TestDatabase } from "../support/db";
import { readWholeStream, streamMatchesLog } from "../support/eventStream";
import { startNats, stopAllNats, type NatsServer } from "../support/natsServer";
import { orderLoad } from "../support/orderLoad";
import { eventually } from "../support/wait";
import { CreateProductDocument, RelayDocument } from "../../src/storefront/generated/graphql";

const run = promisify(execFile);

// The relay against a NATS server of the test's own (nats-server -js in a temporary folder).

let db: TestDatabase;
let nats: NatsServer;
let t: TestApp;

beforeAll(async () => {
  [db, nats] = await Promise.all([freshDatabase(), startNats()]);
  t = await startTestApp(db, {
    eventsNatsUrls: [nats.url],
    services: new Set(["commands", "queries", "projector", "relay"]),
    projectorPollMs: 100,
  });
});

afterAll(async () => {
  await t?.stop();
  await db?.drop();
  await stopAllNats();
});

async function createProduct(stock: number) {
  const sku = `RL-${randomUUID().slice(0, 8)}`;
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 250, initialStock: stock },
  });
  return createProduct.product!;
}

const complete = (what: string) =>
  eventually(
    async () => {
      const match = await streamMatchesLog([nats.url], db);
      return match.ok && match.streamed > 0 && match;
    },
    { timeoutMs: 20_000, intervalMs: 100, what },
  );

describe("the relay (EVENTS_NATS_URL)", () => {
  it("publishes every event of the log once, in its reading order, with the contract's subjects, headers and body", async () => {
    const product = await createProduct(50);
    const load = orderLoad(t, product.id);
    await eventually(() => load.placed >= 20, { what: "20 orders" });
    await load.stop();
    const match = await complete("the stream to hold the whole log");
    expect(match.streamed).toBe(match.logged);
    const [first] = await readWholeStream([nats.url]);
    expect(first).toMatchObject({
      seq: 1,
      subject: "shop.events.product.ProductCreated",
      body: { streamType: "product", type: "ProductCreated", streamVersion: 1 },
    });
    expect(first!.msgId).toBe(first!.body.position);
    expect(first!.shopPosition).toBe(first!.body.position);
    expect(typeof first!.body.txId).toBe("string");
    expect(t.app.relay?.isLeader).toBe(true);
    const { relay } = await eventually(
      async () => {
        const status = await t.admin.ok(RelayDocument, {});
        return status.relay?.lagEvents === 0 && status;
      },
      { what: "the relay status to show it caught up" },
    );
    expect(relay).toMatchObject({
      stream: "SHOP_EVENTS",
      leader: t.app.config.instanceId,
      streamSequence: match.streamed,
      lagSeconds: 0,
    });
    expect((await t.customer("rl-nosy").request(RelayDocument, {})).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/^shop_relay_leader 1$/m);
    expect(metrics).toMatch(/^shop_relay_events_total \d+$/m);
  });

  it("ends complete and in order when NATS is stopped and started under order load", async () => {
    const product = await createProduct(100_000);
    const load = orderLoad(t, product.id);
    try {
      await eventually(() => load.placed >= 10, { what: "orders before the stop" });
      await nats.stop();
      const during = load.placed;
      await eventually(() => load.placed >= during + 10, { what: "orders while NATS is down" });
      await nats.start();
      const after = load.placed;
      await eventually(() => load.placed >= after + 10, { what: "orders after NATS is back" });
    } finally {
      await load.stop();
    }
    const match = await complete("the stream to catch up after the restart");
    expect(match.streamed).toBe(match.logged);
  });

  it("lets one of two relays on the same database publish, and the other take over when it stops", async () => {
    const options = {
      servers: [nats.url],
      stream: "SHOP_EVENTS",
      replicas: 1,
      batchSize: 100,
      pollMs: 100,
      ackTimeoutMs: 5000,
      logger: createLogger("silent"),
    };
    const standby = new Relay(t.app.db!, { ...options, instanceId: "standby" });
    await standby.start();
    try {
      expect(standby.isLeader).toBe(false);
      await t.app.relay!.stop();
      await eventually(() => standby.isLeader, { timeoutMs: 5000, what: "the standby to lead" });
      const product = await createProduct(5);
      const load = orderLoad(t, product.id, 2);
      await eventually(() => load.placed >= 5, { what: "orders after the takeover" });
      await load.stop();
      const match = await complete("the standby to relay the rest");
      expect(match.streamed).toBe(match.logged);
    } finally {
      await standby.stop();
      await t.app.relay!.start();
    }
  });

  it("feeds projectors from the stream (PROJECTOR_SOURCE=nats): several reading at once, each from its own checkpoint", async () => {
    await complete("the stream to hold the whole log");
    const log = await committedEventsAfter(t.app.db!.sql, LOG_START);
    const source = natsSource({ servers: [nats.url], name: "SHOP_EVENTS", connectionName: "test" });
    try {
      const positions = (events: RecordedEvent[]) => events.map((e) => e.position);
      // two projections at the same checkpoint, reading at the same time
      const [a, b] = await Promise.all([source.readAfter(LOG_START, 10), source.readAfter(LOG_START, 10)]);
      expect(positions(a)).toEqual(positions(log.slice(0, 10)));
      expect(positions(b)).toEqual(positions(a));
      // from checkpoints of their own (the second found by a search of the stream), then on
      const middle = log[Math.floor(log.length / 2)]!;
      const [c, d] = await Promise.all([source.readAfter(a.at(-1)!, 5), source.readAfter(middle, 5)]);
      expect(positions(c)).toEqual(positions(log.slice(10, 15)));
      const at = log.indexOf(middle);
      expect(positions(d)).toEqual(positions(log.slice(at + 1, at + 6)));
      expect(await source.backlogAfter(c.at(-1)!)).toMatchObject({ events: log.length - 15 });
      expect(await source.readAfter(log.at(-1)!, 10)).toEqual([]);
      // a checkpoint the stream does not hold (its tail lost, not yet put back): no guess, an error
      const unknown = { txId: log.at(-1)!.txId + 1000n, position: log.at(-1)!.position + 1000n };
      await expect(source.readAfter(unknown, 10)).rejects.toThrow(/not in the stream/);
    } finally {
      await source.close();
    }
  });

  it("shows the stream as another service sees it: npm run events -- tail", async () => {
    await complete("the stream to hold the whole log");
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", "scripts/events.ts", "tail", "--from", "1", "--count", "3"],
      {
        cwd: resolve(import.meta.dirname, "../.."),
        env: { ...process.env, EVENTS_NATS_URL: nats.url, LOG_LEVEL: "silent" },
        timeout: 30_000,
      },
    );
    const lines = stdout
      .trim()
      .split("\n")
      .map((l) => l.split("\t"));
    const [first] = await readWholeStream([nats.url]);
    expect(lines).toHaveLength(3);
    expect(lines[0]!.slice(0, 3)).toEqual(["1", first!.shopPosition, first!.subject]);
  });

  it("refuses the second of two appends racing from the same tail: each sequence is taken once", async () => {
    await complete("the stream to hold the whole log");
    await t.app.relay!.stop(); // only the two racers append now
    const [a, b] = (await Promise.all(
      ["racer-a", "racer-b"].map((name) =>
        EventStream.connect({ servers: [nats.url], name: "SHOP_EVENTS", connectionName: name }),
      ),
    )) as [EventStream, EventStream];
    try {
      await createProduct(1);
      const tail = await a.tail();
      const events = await committedEventsAfter(t.app.db!.sql, tail.position, 100);
      expect(events.length).toBeGreaterThan(0);
      const results = await Promise.allSettled([a.append(tail, events, 5000), b.append(tail, events, 5000)]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(isTailMoved(lost[0]!.reason)).toBe(true);
      expect(await streamMatchesLog([nats.url], db)).toMatchObject({ ok: true });

      // Past the dedup window (shortened here to 100 ms) the server no longer knows the message
      // ids: the expected last sequence alone refuses a stale append (JetStream error 10071).
      const nc = await connect({ servers: [nats.url] });
      try {
        const jsm = await jetstreamManager(nc);
        const { config } = await jsm.streams.info("SHOP_EVENTS");
        await jsm.streams.update("SHOP_EVENTS", { ...config, duplicate_window: 100_000_000 });
        // Until the server has dropped the ids (its purge runs on a timer), the append is refused
        // as a duplicate instead; either way nothing is appended (the stream is compared below).
        const stale = await eventually(
          async () => {
            const error = await b.append(tail, events, 5000).then(
              () => undefined,
              (e: unknown) => e,
            );
            return error instanceof JetStreamApiError && error.code === 10071 ? error : undefined;
          },
          { timeoutMs: 15_000, intervalMs: 100, what: "a stale append refused by its expected last sequence (10071)" },
        );
        expect(isTailMoved(stale)).toBe(true);
        await jsm.streams.update("SHOP_EVENTS", config);
      } finally {
        await nc.close();
      }
      expect(await streamMatchesLog([nats.url], db)).toMatchObject({ ok: true });
    } finally {
      await Promise.all([a.close(), b.close()]);
      await t.app.relay!.start();
    }
  });
});
