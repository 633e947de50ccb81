import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client";
import type { Database, Listener, ListenHandlers, Sql, SqlSession, TransactionOptions } from "./database";

// bigint columns (event positions) come back as strings; int8 stays exact.
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2000;

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres";
  }
}

// Every statement text gets a name, the same on every connection: pg then parses and plans it
// once per connection and afterwards only binds and executes it. Texts are fixed in the code;
// past the cap (a caller building texts it should not) statements run unnamed.
const MAX_NAMED_STATEMENTS = 500;
const statementNames = new Map<string, string>();

function statement(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `s${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name === undefined ? { text, values } : { name, text, values };
}

function sqlOn(queryable: pg.Pool | pg.PoolClient): Sql {
  return {
    async query<T>(text: string, params: unknown[] = []) {
      return (await queryable.query(statement(text, params))).rows as T[];
    },
  };
}

/**
 * A transaction's statements on its pipelined connection: each goes out when issued, without
 * waiting for the answer to the one before. Those issued in the same tick leave in one write
 * (the socket stays corked until the tick ends): BEGIN with the first statement, a command's save
 * with its event append. The server runs them in order, and once one fails every later one of
 * the transaction fails too, so issuing ahead never commits what a failed statement preceded.
 */
function pipelined(client: pg.PoolClient): { sql: Sql; simple(text: string): Promise<pg.QueryResult> } {
  const socket = client.connection.stream;
  let corked = false;
  const corkForThisTick = () => {
    if (corked) return;
    corked = true;
    socket.cork();
    process.nextTick(() => {
      corked = false;
      socket.uncork();
    });
  };
  return {
    sql: {
      async query<T>(text: string, params: unknown[] = []) {
        corkForThisTick();
        return (await client.query(statement(text, params))).rows as T[];
      },
    },
    /** Unprepared, possibly several statements (the simple protocol): BEGIN and its settings. */
    simple(text: string) {
      corkForThisTick();
      return client.query(text);
    },
  };
}

export function openPostgres(url: string, poolSize: number): Database {
  // Pipelined: a connection sends a statement without waiting for the answer to the previous one
  // (pg answers them in order). Nothing here keeps a portal open (no cursors), which pipelining forbids.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, pipeline: true });
  // An idle pooled connection killed by the server must not crash the process.
  pool.on("error", () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const listeners = new Set<Listener>();
  const sessions = new Set<SqlSession>();

  async function transaction<T>(fn: (sql: Sql) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    // The pool listens for errors only while a connection is idle: a connection cut between two
    // statements of ours would otherwise be an unhandled 'error' event (a crash).
    const onError = (error: Error) => (broken = error);
    client.on("error", onError);
    try {
      const { sql, simple } = pipelined(client);
      // Not awaited: BEGIN leaves with fn's first statement, one round trip for both.
      const begun = simple(options.asyncCommit ? "BEGIN; SET LOCAL synchronous_commit TO off" : "BEGIN");
      begun.catch(() => undefined); // awaited below; BEGIN fails only with the connection, and fn with it
      const result = await fn(sql);
      await begun;
      // COMMIT of a transaction that already failed answers ROLLBACK, without an error.
      const committed = await client.query("COMMIT");
      if (committed.command !== "COMMIT")
        throw new Error("the transaction was rolled back (an earlier statement failed)");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch((lost: Error) => (broken = lost));
      throw error;
    } finally {
      // A connection that failed or could not roll back is discarded, not returned to the pool.
      client.off("error", onError);
      client.release(broken);
    }
  }

  async function openSession(onLost?: (error: Error) => void): Promise<SqlSession> {
    const client = new pg.Client({ connectionString: url });
    let closed = false;
    client.on("error", (error) => {
      if (!closed) onLost?.(error);
    });
    client.on("end", () => {
      if (!closed) onLost?.(new Error("session connection ended"));
    });
    await client.connect();
    const session: SqlSession = {
      async query<T>(sql: string, params: unknown[] = []) {
        return (await client.query(statement(sql, params))).rows as T[];
      },
      async exec(sql: string) {
        await client.query(sql);
      },
      async close() {
        if (closed) return;
        closed = true;
        sessions.delete(session);
        await client.end().catch(() => undefined);
      },
    };
    sessions.add(session);
    return session;
  }

  async function listen(channels: string[], handlers: ListenHandlers): Promise<Listener> {
    let closed = false;
    let client: pg.Client | undefined;
    let delay = RECONNECT_MIN_MS;
    let timer: NodeJS.Timeout | undefined;

    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: url });
      c.on("notification", (msg) => handlers.onNotify(msg.channel, msg.payload ?? ""));
      const lost = (error: Error) => {
        if (closed || client !== c) return;
        client = undefined;
        c.removeAllListeners("error");
        c.on("error", () => undefined);
        c.end().catch(() => undefined);
        handlers.onLost?.(error);
        scheduleReconnect();
      };
      c.on("error", lost);
      c.on("end", () => lost(new Error("listen connection ended")));
      await c.connect();
      for (const channel of channels) await c.query(`LISTEN "${channel.replace(/"/g, "")}"`);
      if (closed) {
        // close() ran while this (re)connect was under way
        c.removeAllListeners("end");
        await c.end().catch(() => undefined);
        return;
      }
      client = c;
    };

    const scheduleReconnect = () => {
      if (closed) return;
      timer = setTimeout(() => {
        connect().then(
          () => {
            delay = RECONNECT_MIN_MS;
            handlers.onReconnect?.();
          },
          () => {
            delay = Math.min(delay * 2, RECONNECT_MAX_MS);
            scheduleReconnect();
          },
        );
      }, delay);
      timer.unref();
    };

    await connect();
    const listener: Listener = {
      async close() {
        closed = true;
        listeners.delete(listener);
        if (timer) clearTimeout(timer);
        const c = client;
        client = undefined;
        if (c) {
          c.removeAllListeners("end");
          await c.end().catch(() => undefined);
        }
      },
    };
    listeners.add(listener);
    return listener;
  }

  return {
    kind: "postgres",
    location: redactUrl(url),
    prisma,
    sql: sqlOn(pool),
    transaction,
    openSession,
    listen,
    async close() {
      await Promise.all([...listeners].map((l) => l.close()));
      await Promise.all([...sessions].map((s) => s.close()));
      await prisma.$disconnect();
      await pool.end().catch(() => undefined);
    },
  };
}
