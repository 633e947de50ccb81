import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import type { Sql } from "../../src/db/database";
import type { LogPosition, RecordedEvent } from "../../src/shared/events";
import { foreignTransactions, readEventsAfter } from "../../src/write/eventLog/eventLog";
import { ADMIN_URL, databaseUrl } from "./globalSetup";

export interface TestDatabase {
  name: string;
  url: string;
  /** A plain pg client on this database, for assertions on tables (tests only). */
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The read-your-writes wait of the servers the tests start. Test files run side by side on the
 * machine's two cores, and a projection can take longer than the 2 s default to land while they
 * do. (A transaction another file holds open in its own database holds nothing back here: the
 * log's readers leave other databases' transactions out, src/write/eventLog/eventLog.ts.) The
 * wait ends as soon as the projection is there, so a longer one costs nothing otherwise.
 */
export const TEST_READ_YOUR_WRITES_TIMEOUT_MS = 10_000;

/** A fresh database for one test file: migrated (both sides), or empty for the app to migrate. */
export async function freshDatabase({ empty = false } = {}): Promise<TestDatabase> {
  const template = empty ? "template0" : inject("templateDatabase");
  const name = `shop_test_f_${inject("testRunPid")}_${randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
  const url = databaseUrl(name);
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  pool.on("error", () => undefined);
  return {
    name,
    url,
    async sql(text, params) {
      return (await pool.query(text, params)).rows;
    },
    async drop() {
      await pool.end();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

/**
 * Runs `fn` while a transaction with an id is open in another database of the same server: the
 * server's snapshot then holds every reader of this log back behind it, unless the reader leaves
 * out other databases' transactions (they cannot write this log).
 */
export async function whileOpenElsewhere<T>(fn: () => Promise<T>): Promise<T> {
  const elsewhere = await freshDatabase({ empty: true });
  const other = new pg.Client({ connectionString: elsewhere.url });
  await other.connect();
  try {
    await other.query("BEGIN");
    await other.query("SELECT pg_current_xact_id()");
    return await fn();
  } finally {
    await other.query("ROLLBACK").catch(() => undefined);
    await other.end();
    await elsewhere.drop();
  }
}

/**
 * Every event committed after `after`, as a reader that has looked for other databases'
 * transactions sees them: a transaction another test file holds open in its database would
 * otherwise hold back what committed after it began (the server's snapshot is shared).
 */
export async function committedEventsAfter(sql: Sql, after: LogPosition, limit = 100_000): Promise<RecordedEvent[]> {
  return readEventsAfter(sql, after, limit, await foreignTransactions(sql));
}
