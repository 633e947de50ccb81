import { afterAll, beforeAll, expect, it } from "vitest";
import { openPostgres } from "../../src/db/postgres";
import type { Database } from "../../src/db/database";
import { freshDatabase, type TestDatabase } from "../support/db";
import { FaultProxy } from "../support/faultProxy";
import { eventually } from "../support/wait";

// A LISTEN connection only receives. When the network between it and Postgres goes silent
// (bytes dropped, the connection left open), nothing fails by itself: the heartbeat must notice,
// and LISTEN must be re-established once the network is back.
let db: TestDatabase;
let proxy: FaultProxy;
let database: Database;
beforeAll(async () => {
  db = await freshDatabase({ empty: true });
  const target = new URL(db.url);
  proxy = await FaultProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
  const through = new URL(db.url);
  through.port = String(proxy.port);
  database = openPostgres(through.toString(), 2, {
    queryTimeoutMs: 1_000,
    connectTimeoutMs: 1_000,
    listenHeartbeatMs: 300, // three beats within one query timeout: the third would queue behind two
  });
});
afterAll(async () => {
  await database?.close();
  await proxy?.stop();
  await db?.drop();
});

it("notices a silent LISTEN connection, and listens again once the network is back", { timeout: 60_000 }, async () => {
  const received: string[] = [];
  // The heartbeat never queues a query behind its last one (pg deprecates that, and pg 9 refuses it).
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on("warning", onWarning);
  let lost = 0;
  let reconnected = 0;
  const listener = await database.listen(["heartbeat_test"], {
    onNotify: (_channel, payload) => received.push(payload),
    onLost: () => (lost += 1),
    onReconnect: () => (reconnected += 1),
  });
  try {
    await db.sql(`SELECT pg_notify('heartbeat_test', 'before')`);
    await eventually(() => received.includes("before"), { what: "a notification before the fault" });

    proxy.silent = true;
    await eventually(() => lost === 1, { timeoutMs: 10_000, what: "the silent connection to count as lost" });
    await db.sql(`SELECT pg_notify('heartbeat_test', 'during')`); // sent to no one: LISTEN is down
    proxy.silent = false;

    await eventually(() => reconnected === 1, { timeoutMs: 20_000, what: "LISTEN to be re-established" });
    await db.sql(`SELECT pg_notify('heartbeat_test', 'after')`);
    await eventually(() => received.includes("after"), { what: "a notification after the fault" });
    expect(received).not.toContain("during"); // lost: what onReconnect is for (the change feed re-reads)
    expect(lost).toBe(1);
    expect(warnings.filter((w) => w.includes("already executing a query"))).toEqual([]);
  } finally {
    process.off("warning", onWarning);
    await listener.close();
  }
});
