import { randomUUID } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../support/app";
import { freshDatabase, type TestDatabase } from "../support/db";
import { streamMatchesLog } from "../support/eventStream";
import { startNats, startNatsCluster, stopAllNats, type NatsServer } from "../support/natsServer";
import { freePort } from "../support/ports";
import { orderLoad as ordersOf } from "../support/orderLoad";
import { eventually } from "../support/wait";
import { CreateProductDocument } from "../../src/storefront/generated/graphql";
import { ProjectorThread } from "../../src/projection/projectorThread";
import { RELAY_LEASE } from "../../src/relay/relay";
import { ServerProcess, verifyDatabase } from "./serverProcess";

// The relay's hard cases with real servers: relay processes killed with -9 mid-batch while a
// standby takes over, and a 3-node NATS cluster losing the node that leads the stream.

const databases: TestDatabase[] = [];
const apps: TestApp[] = [];
const processes: ServerProcess[] = [];

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  await Promise.all(apps.map((a) => a.stop()));
  await Promise.all(databases.map((d) => d.drop()));
  await stopAllNats();
});

async function database(empty = false): Promise<TestDatabase> {
  const db = await freshDatabase({ empty });
  databases.push(db);
  return db;
}

async function app(...args: Parameters<typeof startTestApp>): Promise<TestApp> {
  const started = await startTestApp(...args);
  apps.push(started);
  return started;
}

/** A product with stock for any load, and orders of it from several customers until stopped. */
async function orderLoad(t: TestApp) {
  const sku = `RF-${randomUUID().slice(0, 8)}`;
  const { createProduct } = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 100, initialStock: 1_000_000 },
  });
  return ordersOf(t, createProduct.product!.id);
}

async function streamLeader(servers: string[]): Promise<string | undefined> {
  const nc = await connect({ servers });
  try {
    return (await (await jetstreamManager(nc)).streams.info("SHOP_EVENTS")).cluster?.leader;
  } finally {
    await nc.close();
  }
}

/** What the log, the relay and each node's copy of the stream hold: for a failure's message. */
async function clusterReport(cluster: NatsServer[], t: TestApp, db: TestDatabase): Promise<string> {
  const [row] = await db.sql<{ events: string }>(`SELECT count(*)::text AS events FROM "write".events`);
  const events = row?.events;
  const relay = t.app.relay;
  const lines = [`log: ${events} events; relay leading ${relay?.isLeader}, at ${relay?.position?.position}`];
  for (const node of cluster) {
    const state = await fetch(`${node.monitorUrl}/jsz?streams=true`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.text())
      .catch((error: unknown) => String(error));
    lines.push(
      `${node.name}: ${state.replace(/\s+/g, " ").slice(0, 1500)}`,
      node.output().split("\n").slice(-15).join("\n"),
    );
  }
  return lines.join("\n");
}

/** The instance ids of the sessions that hold the relay's lease (its advisory lock). */
const leaseHolders = async (db: TestDatabase): Promise<string[]> =>
  (
    await db.sql<{ name: string }>(
      `SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.classid = ${RELAY_LEASE} AND l.granted AND a.datname = current_database()`,
    )
  ).map((r) => r.name);

// Generous: what is checked is that every event arrives once and in order, not how fast; the
// relay processes restart (start-up, migrations check) on the same two cores as the other test files.
const streamComplete = (servers: string[], db: TestDatabase, what: string, output = () => "") => {
  let last: Awaited<ReturnType<typeof streamMatchesLog>> | undefined;
  return eventually(
    async () => {
      last = await streamMatchesLog(servers, db);
      return last.ok && last.streamed > 0 && last;
    },
    { timeoutMs: 60_000, intervalMs: 200, what },
  ).catch(async (error: unknown) => {
    // Which relay held the lease at the end, and how far apart the stream and the log were.
    const holders = await leaseHolders(db).catch(() => []);
    const state = `last comparison: ${JSON.stringify(last)}; lease held by: ${JSON.stringify(holders)}`;
    throw new Error(`${String(error)}\n${state}\n${output()}`);
  });
};

const RELAY_IDS = ["relay-a", "relay-b"];

describe("relays killed with -9 mid-batch, a standby taking over", () => {
  it("leaves the stream with every event once, in order", { timeout: 150_000 }, async () => {
    const [db, nats] = await Promise.all([database(), startNats()]);
    // commands in this process; two relay processes on the same database, small batches
    const t = await app(db, { services: new Set(["commands", "queries", "projector"]) });
    // At info, the relays' output says when one leads and when one starts over from the stream's tail.
    const relayEnv = { SERVICES: "relay", EVENTS_NATS_URL: nats.url, PROJECTOR_BATCH_SIZE: "20", LOG_LEVEL: "info" };
    const relays = await Promise.all(
      RELAY_IDS.map(async (id) => {
        const p = new ServerProcess(db.url, await freePort(), { ...relayEnv, INSTANCE_ID: id });
        processes.push(p);
        await p.start();
        return p;
      }),
    );
    const load = await orderLoad(t);
    try {
      for (let round = 0; round < 3; round++) {
        const target = load.placed + 15;
        await eventually(() => load.placed >= target, { timeoutMs: 30_000, what: `${target} orders` });
        // kill whichever leads (the other stands by): the -9 lands while it publishes
        const leader = await eventually(async () => (await leaseHolders(db))[0], {
          timeoutMs: 30_000,
          what: "a relay to lead",
        });
        const victim = relays[RELAY_IDS.indexOf(leader)]!;
        const standby = RELAY_IDS.find((id) => id !== leader)!;
        await victim.kill9();
        // the standby takes the lease over (and the stream goes on from its tail); then the victim
        // comes back as the standby
        await eventually(async () => (await leaseHolders(db))[0] === standby, {
          timeoutMs: 30_000,
          what: `${standby} to lead once ${leader} was killed`,
        });
        await victim.start();
      }
      const target = load.placed + 15;
      await eventually(() => load.placed >= target, { timeoutMs: 30_000, what: "orders after the last kill" });
    } finally {
      await load.stop();
    }
    const match = await streamComplete([nats.url], db, "the stream to hold the whole log", () =>
      relays.map((r, i) => `relay-${"ab"[i]} wrote:\n${r.output()}`).join("\n"),
    );
    expect(match.streamed).toBe(match.logged);
  });
});

describe("a 3-node NATS cluster, the stream on 3 replicas, losing a node under load", () => {
  it("keeps the stream complete and in order, and the NATS-fed projector going", { timeout: 150_000 }, async () => {
    const [writeDb, readDb, cluster] = await Promise.all([database(), database(true), startNatsCluster(3)]);
    const servers = cluster.map((n) => n.url);
    const nats = { eventsNatsUrls: servers, eventsStreamReplicas: 3 };
    const t = await app(writeDb, { ...nats, services: new Set(["commands", "queries", "projector", "relay"]) });
    const query = await app(
      { url: "" },
      {
        ...nats,
        databaseUrl: undefined,
        readDatabaseUrl: readDb.url,
        services: new Set(["queries", "projector"]),
        runProjector: true,
        projectorSource: "nats",
        instanceId: "nats-fed",
      },
    );
    const load = await orderLoad(t);
    try {
      await eventually(() => load.placed >= 20, { timeoutMs: 30_000, what: "orders before the node dies" });
      // the node that leads the stream, from the server's own report
      const leaderName = await eventually(() => streamLeader(servers), { what: "the stream's leader" });
      const victim = cluster.find((n) => n.name === leaderName) ?? cluster[0]!;
      await victim.kill();
      const during = load.placed;
      await eventually(() => load.placed >= during + 20, { timeoutMs: 30_000, what: "orders with a node down" });
      await victim.start();
      const after = load.placed;
      await eventually(() => load.placed >= after + 10, { timeoutMs: 30_000, what: "orders with the node back" });
    } finally {
      await load.stop();
    }
    const match = await streamComplete(servers, writeDb, "the stream to hold the whole log").catch(
      async (error: unknown) => {
        throw new Error(`${String(error)}\n${await clusterReport(cluster, t, writeDb)}`, { cause: error });
      },
    );
    expect(match.streamed).toBe(match.logged);
    // the NATS-fed read database agrees with the write database
    const result = await verifyDatabase(writeDb.url, readDb.url, 20_000);
    expect(result.problems).toEqual([]);
    expect(query.app.projector?.isLeader).toBe(true);
    expect(query.app.projector).toBeInstanceOf(ProjectorThread); // the NATS-fed projector runs on its own thread too
  });
});
