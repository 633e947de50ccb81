import type { PrismaClient, Prisma } from "../generated/prisma/client";

export type Tx = Prisma.TransactionClient;

/** A dedicated database session (its own connection on a server): session advisory locks, migrations. */
export interface SqlSession {
  /** One statement with $1.. parameters. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
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
  /** onLost fires when the session's connection dies (its session locks are then gone). */
  openSession(onLost?: (error: Error) => void): Promise<SqlSession>;
  /** LISTEN on channels, re-established by itself when the connection drops. */
  listen(channels: string[], handlers: ListenHandlers): Promise<Listener>;
  close(): Promise<void>;
}
