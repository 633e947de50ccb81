import { resolve } from "node:path";
import type { Config } from "../config";
import type { Database } from "./database";
import { migrate, type MigrationSide } from "./migrate";
import { openEmbedded } from "./pglite";
import { openPostgres, type PostgresOptions } from "./postgres";

type DatabaseConfig = Pick<
  Config,
  | "databaseUrl"
  | "readDatabaseUrl"
  | "readReplicaUrls"
  | "dataDir"
  | "dbPoolSize"
  | "queryStatementTimeoutMs"
  | "dbQueryTimeoutMs"
  | "dbConnectTimeoutMs"
  | "mutationQueueMs"
>;

/** The deadlines every request pool has: no request waits on a silent network for ever. */
const deadlines = (config: DatabaseConfig): PostgresOptions => ({
  queryTimeoutMs: config.dbQueryTimeoutMs,
  connectTimeoutMs: config.dbConnectTimeoutMs,
});

/**
 * The write database. DATABASE_URL set: that Postgres server. Unset: an embedded Postgres
 * (PGlite) under DATA_DIR. Its queue for connections sheds mutations (MUTATION_QUEUE_MS).
 */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  const queueTargetMs = config.mutationQueueMs;
  if (config.databaseUrl)
    return openPostgres(config.databaseUrl, config.dbPoolSize, { ...deadlines(config), queueTargetMs });
  return openEmbedded(resolve(config.dataDir), { queueTargetMs });
}

/** The two sides' databases: the same one unless READ_DATABASE_URL names another. */
export interface Databases {
  /** Absent on an instance that serves queries only from READ_DATABASE_URL (no DATABASE_URL). */
  write: Database | undefined;
  read: Database;
  /** Each distinct database once (to migrate, to check). */
  all: Database[];
  /** Streaming replicas of the read database (read-only; never migrated). */
  replicas: Database[];
  /**
   * The read database for the query side (queries, read-backs, pushes): on Postgres, a pool of
   * its own whose statements the server cancels after QUERY_STATEMENT_TIMEOUT_MS, so one heavy
   * query cannot hold a connection. Else `read` itself.
   */
  queries: Database;
  close(): Promise<void>;
}

/** The databases of both sides; one database serves both when `read` is `write`. */
export function databases(
  write: Database | undefined,
  read: Database = write!,
  replicas: Database[] = [],
  queries: Database = read,
): Databases {
  const all = !write || write === read ? [read] : [write, read];
  return {
    write,
    read,
    all,
    replicas,
    queries,
    async close() {
      await Promise.all([...all, ...replicas, ...(queries === read ? [] : [queries])].map((d) => d.close()));
    },
  };
}

export async function openDatabases(config: DatabaseConfig): Promise<Databases> {
  const timed = { ...deadlines(config), statementTimeoutMs: config.queryStatementTimeoutMs };
  const replicas = config.readReplicaUrls.map((url) => openPostgres(url, config.dbPoolSize, timed));
  const queriesOn = (url: string | undefined, read: Database) =>
    url && config.queryStatementTimeoutMs > 0 ? openPostgres(url, config.dbPoolSize, timed) : read;
  if (!config.databaseUrl && config.readDatabaseUrl) {
    const read = openPostgres(config.readDatabaseUrl, config.dbPoolSize, deadlines(config));
    return databases(undefined, read, replicas, queriesOn(config.readDatabaseUrl, read));
  }
  const write = await openDatabase(config);
  if (!config.readDatabaseUrl || config.readDatabaseUrl === config.databaseUrl)
    return databases(write, write, replicas, queriesOn(config.databaseUrl, write));
  const read = openPostgres(config.readDatabaseUrl, config.dbPoolSize, deadlines(config));
  return databases(write, read, replicas, queriesOn(config.readDatabaseUrl, read));
}

/** Migrates each database with its side's part: one database takes both sides. Answers what each applied. */
export async function migrateDatabases(
  dbs: Databases,
): Promise<{ database: Database; side: MigrationSide; applied: string[] }[]> {
  const sides: [Database, MigrationSide][] = !dbs.write
    ? [[dbs.read, "read"]]
    : dbs.all.length === 1
      ? [[dbs.write, "both"]]
      : [
          [dbs.write, "write"],
          [dbs.read, "read"],
        ];
  const results = [];
  for (const [database, side] of sides) results.push({ database, side, applied: await migrate(database, { side }) });
  return results;
}

/** The write database, for what cannot work without it (the CLIs, commands, the projector on the log). */
export function writeDatabase(dbs: Databases): Database {
  if (!dbs.write) throw new Error("this needs the write database: set DATABASE_URL");
  return dbs.write;
}
