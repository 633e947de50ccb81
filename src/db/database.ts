import type { PrismaClient } from "../generated/prisma/client";

/**
 * SQL straight through the driver: one statement with $1.. parameters, rows as the driver gives
 * them (int8 as exact strings, jsonb parsed, timestamptz as Date). The hot paths (commands, the
 * projector, the read queries) use this rather than Prisma: Prisma 7 spends ~0.7 ms of CPU on
 * each call before the driver sees it (prisma/orm#28845), several times the statement itself.
 * Keep the text of a statement fixed (pass lists as arrays, unnest them in SQL): the text
 * names a prepared statement, reused on every connection.
 */
export interface Sql {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

/**
 * Awaits two statements (or chains of them) issued back to back in one transaction, in the order
 * they were issued. If the first fails, the second fails only because of it (the transaction is
 * aborted): the first's error is the one to report, and the second's is not left unhandled.
 */
export async function inIssueOrder<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  second.catch(() => undefined);
  return [await first, await second];
}

export interface TransactionOptions {
  /**
   * Commit without waiting for the WAL to reach the disk (synchronous_commit off): for data
   * derived from what is already durable (the read tables, from the event log). A crash may lose
   * the last such commits, never half of one; the projector then applies those events again.
   */
  asyncCommit?: boolean;
}

/** A dedicated database session (its own connection on a server): session advisory locks, migrations. */
export interface SqlSession extends Sql {
  /** One or more statements without parameters (migration files). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export interface Listener {
  close(): Promise<void>;
}

export interface ListenHandlers {
  onNotify(channel: string, payload: string): void;
  /** Called after the connection was lost and LISTEN re-established: catch up on what was missed. */
  onReconnect?(): void;
  /** Called when the connection is lost (before reconnecting). */
  onLost?(error: Error): void;
}

/**
 * Everything that differs between a Postgres server and the embedded database lives behind this
 * interface, chosen once at start-up (src/db/open.ts). The rest of the code only sees Prisma,
 * sessions and notifications.
 */
export interface Database {
  readonly kind: "postgres" | "embedded";
  /** Human-readable place of the data, for logs (URL without password, or a folder). */
  readonly location: string;
  readonly prisma: PrismaClient;
  /** One statement on a pooled connection (see Sql). */
  readonly sql: Sql;
  /**
   * Runs fn in ONE transaction on one pooled connection (READ COMMITTED): COMMIT if it returns,
   * ROLLBACK if it throws. Use only `sql` inside fn.
   */
  transaction<T>(fn: (sql: Sql) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** onLost fires when the session's connection dies (its session locks are then gone). */
  openSession(onLost?: (error: Error) => void): Promise<SqlSession>;
  /** LISTEN on channels, re-established by itself when the connection drops. */
  listen(channels: string[], handlers: ListenHandlers): Promise<Listener>;
  close(): Promise<void>;
}
