import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { openPostgres } from "../../src/db/postgres";
import type { Database } from "../../src/db/database";
import pg from "pg";
import {
  backlogAfter,
  foreignTransactions,
  hasHeldBackEvents,
  readEventsAfter,
} from "../../src/write/eventLog/eventLog";
import { LOG_START } from "../../src/shared/events";
import { logSource } from "../../src/projection/logSource";
import { claimKey } from "../../src/write/idempotency";
import { freshDatabase, type TestDatabase } from "../support/db";
import { expectedStream } from "../support/eventStream";
import { eventually } from "../support/wait";

let tdb: TestDatabase;
let db: Database;
beforeAll(async () => {
  tdb = await freshDatabase();
  db = openPostgres(tdb.url, 2);
});
afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

const insertWithTx = (txId: string) =>
  tdb.sql<{ position: string }>(
    `INSERT INTO "write".events (tx_id, stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
     VALUES ($1::xid8, $2, 'test', 1, 'Probe', '{}', '{}', now()) RETURNING position`,
    [txId, randomUUID()],
  );

const insertNow = () =>
  tdb.sql<{ position: string }>(
    `INSERT INTO "write".events (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
     VALUES ($1, 'test', 1, 'Probe', '{}', '{}', now()) RETURNING position`,
    [randomUUID()],
  );

describe("reading the event log", () => {
  it("orders by transaction id as a number, not as text, across a change in digit count", async () => {
    // Transaction ids 99 and 100 (long finished): as text "100" < "99", which would return 100
    // first and then, reading after it, skip 99 for ever.
    const [second] = await insertWithTx("100");
    const [first] = await insertWithTx("99");
    const all = await readEventsAfter(db.sql, LOG_START, 10);
    expect(all.slice(0, 2).map((e) => [e.txId, e.position])).toEqual([
      [99n, BigInt(first!.position)],
      [100n, BigInt(second!.position)],
    ]);
    const afterFirst = await readEventsAfter(db.sql, { txId: 99n, position: BigInt(first!.position) }, 10);
    expect(afterFirst.map((e) => e.txId)).toEqual([100n]);
    // The tests' own copy of the log (what the NATS stream must equal) sorts the same way: it
    // sorted as text once, and the relay tests failed when the server's ids gained a digit.
    expect((await expectedStream(tdb)).slice(0, 2).map((m) => m.body.txId)).toEqual(["99", "100"]);
  });
});

describe("a reader's backlog", () => {
  it("is counted exactly up to a bound, with the oldest pending event's time; past it, estimated from positions", async () => {
    const inserted = await tdb.sql<{ position: string }>(
      `INSERT INTO "write".events (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
       SELECT gen_random_uuid(), 'test', 1, 'Probe', '{}', '{}', now() - make_interval(secs => 100 - g)
         FROM generate_series(1, 12) AS g
       RETURNING position`,
    );
    const first = BigInt(inserted[0]!.position);
    const ours = await eventually(
      async () => {
        const read = (await readEventsAfter(db.sql, LOG_START, 1_000)).filter((e) => e.position >= first);
        return read.length === 12 && read;
      },
      { timeoutMs: 15_000, what: "the 12 events to be readable" },
    );
    const reader = (i: number) => ({ txId: ours[i]!.txId, position: ours[i]!.position });
    // A reader at the first: 11 pending, counted exactly while the bound is at least 11.
    expect(await backlogAfter(db.sql, reader(0), 11)).toEqual({ events: 11, oldestAt: ours[1]!.occurredAt });
    // Over the bound: the newest position less the reader's (one transaction, no gaps: exact
    // here), and the oldest pending event's time all the same.
    expect(await backlogAfter(db.sql, reader(0), 5)).toEqual({ events: 11, oldestAt: ours[1]!.occurredAt });
    expect(await backlogAfter(db.sql, reader(3), 5)).toEqual({ events: 8, oldestAt: ours[4]!.occurredAt });
    expect(await backlogAfter(db.sql, reader(11), 5)).toEqual({ events: 0, oldestAt: null });
  });
});

describe("events held back by an older open transaction", () => {
  it("are reported while that transaction is open, and no longer once it ends", async () => {
    const older = new pg.Client({ connectionString: tdb.url });
    await older.connect();
    try {
      await older.query("BEGIN");
      await older.query("SELECT pg_current_xact_id()"); // older than the event's transaction
      const [younger] = await tdb.sql<{ position: string }>(
        `INSERT INTO "write".events (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
         VALUES ($1, 'test', 1, 'Probe', '{}', '{}', now()) RETURNING position`,
        [randomUUID()],
      );
      expect(younger).toBeDefined();
      expect(await hasHeldBackEvents(db.sql)).toBe(true);
      await older.query("COMMIT");
      await eventually(async () => !(await hasHeldBackEvents(db.sql)), { what: "nothing held back" });
    } finally {
      await older.end();
    }
  });
});

describe("a transaction open in another database of the server", () => {
  it("holds nothing back once the reader has looked for it, though it holds the snapshot's xmin; one open in this database does", async () => {
    const elsewhere = await freshDatabase({ empty: true });
    const other = new pg.Client({ connectionString: elsewhere.url });
    const here = new pg.Client({ connectionString: tdb.url });
    await Promise.all([other.connect(), here.connect()]);
    try {
      await other.query("BEGIN");
      const { rows } = await other.query<{ xid: string }>("SELECT pg_current_xact_id()::text AS xid");
      const xid = rows[0]!.xid;
      const [inserted] = await insertNow();
      const position = inserted!.position;
      // Committed after the other database's transaction began, so above the snapshot's xmin:
      const [snapshot] = await tdb.sql<{ xmin: string }>(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin",
      );
      expect(BigInt(snapshot!.xmin)).toBeLessThanOrEqual(BigInt(xid));
      // So it is held back while the reader knows nothing of the other database,
      expect((await readEventsAfter(db.sql, LOG_START, 100_000)).map((e) => e.position)).not.toContain(
        BigInt(position),
      );
      expect(await hasHeldBackEvents(db.sql)).toBe(true);
      // and read at once once it has looked (no other database's transaction can write this log).
      const foreign = await foreignTransactions(db.sql);
      expect(foreign).toContain(xid); // widened to its full 64-bit id
      expect((await readEventsAfter(db.sql, LOG_START, 100_000, foreign)).map((e) => e.position)).toContain(
        BigInt(position),
      );
      expect(await hasHeldBackEvents(db.sql, foreign)).toBe(false);
      // A projector's or relay's source looks by itself when it is held back, and wakes its reader.
      const source = logSource(db);
      let woken = 0;
      const watch = await source.watch(() => (woken += 1), 100);
      try {
        expect((await source.readAfter(LOG_START, 100_000)).map((e) => e.position)).not.toContain(BigInt(position));
        await watch.idle(false);
        expect(woken).toBe(1);
        expect((await source.readAfter(LOG_START, 100_000)).map((e) => e.position)).toContain(BigInt(position));
      } finally {
        await watch.close();
      }

      // An older transaction of this database holds back what commits after it, as it must.
      await here.query("BEGIN");
      const mine = (await here.query<{ xid: string }>("SELECT pg_current_xact_id()::text AS xid")).rows[0]!.xid;
      const [younger] = await insertNow();
      expect(await foreignTransactions(db.sql)).not.toContain(mine);
      expect((await readEventsAfter(db.sql, LOG_START, 100_000, foreign)).map((e) => e.position)).not.toContain(
        BigInt(younger!.position),
      );
      expect(await hasHeldBackEvents(db.sql, foreign)).toBe(true);
      await here.query("COMMIT");
      // Looked for again: other test files may have begun transactions in their databases since.
      const foreignNow = await foreignTransactions(db.sql);
      expect((await readEventsAfter(db.sql, LOG_START, 100_000, foreignNow)).map((e) => e.position)).toContain(
        BigInt(younger!.position),
      );
    } finally {
      await here.end();
      await other.query("ROLLBACK").catch(() => undefined);
      await other.end();
      await elsewhere.drop();
    }
  });
});

describe("an order's place in the log", () => {
  it("comes after every commit its load saw: the key's lock and lookup take no transaction id, the load's row locks do", async () => {
    // A transaction's events sort by its id, taken at its first write or row lock. Taken before
    // the load, a product created and committed meanwhile would sort after the order that sold it.
    const claim = { actorId: "alice", command: "placeOrder", key: randomUUID(), request: [], now: new Date() };
    const ids = await db.transaction(async (tx) => {
      await tx.run(claimKey(claim));
      const [beforeLoad] = await tx.query<{ id: string | null }>(`SELECT pg_current_xact_id_if_assigned()::text AS id`);
      await tx.query(`SELECT 1 FROM pg_class LIMIT 1 FOR SHARE`); // a row lock, as the load takes
      const [afterLoad] = await tx.query<{ id: string | null }>(`SELECT pg_current_xact_id_if_assigned()::text AS id`);
      return { beforeLoad: beforeLoad!.id, afterLoad: afterLoad!.id };
    });
    expect(ids.beforeLoad).toBeNull();
    expect(ids.afterLoad).not.toBeNull();
  });
});
