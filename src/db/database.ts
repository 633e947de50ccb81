import type { PrismaClient } from "../generated/prisma/client";
import type { Backlog } from "./backlog";
import type { Statement } from "./sql";

/**
 * SQL straight through the driver: rows as the driver gives them (int8 as exact strings, jsonb
 * parsed, timestamptz as Date). The hot paths (commands, the projector, the read queries) use
 * this rather than Prisma, whose client costs several times the statement itself in CPU (see the
 * README, "Prisma where it serves").
 */
export interface Sql {
  query<T = Record<string, unknown>>(statement: Statement<T>): Promise<T[]>;
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

/** The rows of each statement of a list, in order. */
export type RowsOf<S extends readonly Statement<unknown>[]> = {
  -readonly [K in keyof S]: S[K] extends Statement<infer Row> ? Row[] : never;
};

/** A transaction in progress, on one connection. */
export interface Tx extends Sql {
  /**
   * Sends the statements at once (one round trip on a server) and answers their rows in order.
   * The server runs them in order, and once one fails every later one fails too: the error is
   * the first failure's.
   */
  run<S extends readonly Statement<unknown>[]>(statements: S): Promise<RowsOf<S>>;
  /** run(statements) with COMMIT behind them, in the same round trip: the transaction's last step. */
  commit<S extends readonly Statement<unknown>[]>(statements: S): Promise<RowsOf<S>>;
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
  /** Ends the session: its session advisory locks are free when this returns. */
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
 * statements, sessions and notifications.
 */
export interface Database {
  readonly kind: "postgres" | "embedded";
  /** Human-readable place of the data, for logs (URL without password, or a folder). */
  readonly location: string;
  /** For the cold paths: operator scripts, verification, readiness. */
  readonly prisma: PrismaClient;
  /** One statement on a pooled connection (see Sql). */
  readonly sql: Sql;
  /**
   * Runs fn in ONE transaction on one pooled connection (READ COMMITTED): COMMIT once fn
   * returns (unless it committed with tx.commit), ROLLBACK if it throws. Use only `tx` inside fn.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** The transactions' wait for a connection: whether it stands, and how many wait now (see Backlog). */
  readonly backlog: Pick<Backlog, "standing" | "queued">;
  /** onLost fires when the session's connection dies (its session locks are then gone). */
  openSession(onLost?: (error: Error) => void): Promise<SqlSession>;
  /** LISTEN on channels, re-established by itself when the connection drops. */
  listen(channels: string[], handlers: ListenHandlers): Promise<Listener>;
  close(): Promise<void>;
}

/** A statement from Sql.query's two forms. */
export function toStatement(statement: Statement<unknown> | string, params: unknown[] = []): Statement<unknown> {
  return typeof statement === "string" ? { text: statement, values: params } : statement;
}

/**
 * Awaits promises of statements sent back to back, in the order they were sent: when one fails,
 * the later ones fail only because of it, so its error is the one to report, and theirs are
 * not left unhandled.
 */
export async function inOrder<T extends readonly unknown[]>(sent: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  for (const p of sent) p.catch(() => undefined);
  const results: unknown[] = [];
  for (const p of sent) results.push(await p);
  return results as unknown as T;
}
