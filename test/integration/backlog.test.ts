import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as hold } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database";
import { openEmbedded } from "../../src/db/pglite";
import { openPostgres } from "../../src/db/postgres";
import { freshDatabase, type TestDatabase } from "../support/db";
import { eventually } from "../support/wait";

// Each kind of database times its transactions' wait for a connection (src/db/backlog.ts):
// Postgres through its pool, the embedded one through PGlite's one connection. Transactions that
// hold their connection 120 ms each, queued behind one another, make a queue that stands; it is
// gone once they are done. (The decision itself: test/unit/backlog.unit.test.ts; a mutation
// refused for it: test/e2e/overload.e2e.test.ts.)
const HOLD_MS = 120;
const TARGET_MS = 50;
const QUEUED = 8;

let pgDb: TestDatabase;
let dir: string;
const opened: Database[] = [];
beforeAll(async () => {
  pgDb = await freshDatabase();
  dir = await mkdtemp(join(tmpdir(), "backlog-test-"));
  opened.push(openPostgres(pgDb.url, 1, { queueTargetMs: TARGET_MS }));
  opened.push(await openEmbedded(join(dir, "data"), { queueTargetMs: TARGET_MS }));
}, 60_000);
afterAll(async () => {
  await Promise.all(opened.map((db) => db.close()));
  await pgDb?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe.each([
  ["Postgres, a pool of one connection", 0],
  ["the embedded database", 1],
])("a standing queue for connections: %s", (_, index) => {
  it("stands while transactions wait behind slow ones, and is gone when they are done", async () => {
    const db = opened[index]!;
    expect(db.backlog.standing()).toBe(false);
    const transactions = Array.from({ length: QUEUED }, () =>
      db.transaction(async (tx) => {
        await tx.query("SELECT 1");
        await hold(HOLD_MS); // the connection held: the next waits this much longer
      }),
    );
    try {
      await eventually(() => db.backlog.standing(), { timeoutMs: 10_000, intervalMs: 10, what: "the queue to stand" });
    } finally {
      await Promise.all(transactions);
    }
    expect(db.backlog.standing()).toBe(false);
    await db.transaction((tx) => tx.query("SELECT 1")); // a transaction after it waits for nothing
    expect(db.backlog.standing()).toBe(false);
  });
});
