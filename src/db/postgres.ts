import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client";
import {
  inOrder,
  toStatement,
  type Database,
  type Listener,
  type ListenHandlers,
  type RowsOf,
  type Sql,
  type SqlSession,
  type TransactionOptions,
  type Tx,
} from "./database";
import type { Statement } from "./sql";
import { Backlog } from "./backlog";

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2000;
/**
 * A LISTEN connection only receives: a network gone silent would leave it waiting for
 * notifications that never come. Every LISTEN_HEARTBEAT_MS it asks the server for a `SELECT 1`;
 * no answer within the query deadline (DB_QUERY_TIMEOUT_MS, else this long) counts as lost.
 */
const LISTEN_HEARTBEAT_MS = 5_000;

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

function prepared(text: string, values: readonly unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `s${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  // pg only reads the values: no copy of the array per statement.
  const params = values as unknown[];
  return name === undefined ? { text, values: params } : { name, text, values: params };
}

function sqlOn(queryable: pg.Pool | pg.PoolClient | pg.Client): Sql {
  return {
    async query<T>(statement: Statement<T> | string, params?: unknown[]) {
      const { text, values } = toStatement(statement, params);
      return (await queryable.query(prepared(text, values))).rows as T[];
    },
  };
}

/**
 * A transaction on a pipelined connection: each statement goes out when issued, without waiting
 * for the answer to the one before, and those issued in the same tick leave in one write (the
 * socket stays corked until the tick ends): BEGIN with the first statements, COMMIT with the last.
 * The server runs them in order, and once one fails every later one of the transaction fails too,
 * so sending ahead never commits what a failed statement preceded.
 */
function pipelined(
  client: pg.PoolClient,
  state: { committed: boolean },
): Tx & { simple(text: string): Promise<pg.QueryResult> } {
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
  const send = (statements: readonly Statement<unknown>[]) => {
    corkForThisTick();
    return statements.map((s) => client.query(prepared(s.text, s.values)).then((r) => r.rows));
  };
  const tx = {
    async query<T>(statement: Statement<T> | string, params?: unknown[]) {
      const [rows] = send([toStatement(statement, params)]);
      return (await rows) as T[];
    },
    run<S extends readonly Statement<unknown>[]>(statements: S) {
      return inOrder(send(statements)) as Promise<RowsOf<S>>;
    },
    async commit<S extends readonly Statement<unknown>[]>(statements: S) {
      const sent = send(statements);
      state.committed = true;
      const committed = tx.simple("COMMIT");
      committed.catch(() => undefined);
      const rows = (await inOrder(sent)) as RowsOf<S>;
      // COMMIT of a transaction that already failed answers ROLLBACK, without an error.
      if ((await committed).command !== "COMMIT") throw new Error("the transaction was rolled back");
      return rows;
    },
    /** Unprepared, possibly several statements (the simple protocol): BEGIN and its settings, COMMIT. */
    simple(text: string) {
      corkForThisTick();
      return client.query(text);
    },
  };
  return tx;
}

export interface PostgresOptions {
  /** The server cancels any statement of this pool's connections that runs longer (0 or unset: never). */
  statementTimeoutMs?: number;
  /**
   * A statement with no answer from the server in this time (a silent network, a hung server)
   * fails, and its connection is dropped (DB_QUERY_TIMEOUT_MS; 0 or unset: never).
   */
  queryTimeoutMs?: number;
  /** Opening a connection fails after this long (DB_CONNECT_TIMEOUT_MS; 0 or unset: never). */
  connectTimeoutMs?: number;
  /**
   * A wait for a connection that counts as a standing queue (Backlog; MUTATION_QUEUE_MS; 0 or
   * unset: never).
   */
  queueTargetMs?: number;
  /** How often a LISTEN connection checks that the server still answers (LISTEN_HEARTBEAT_MS by default). */
  listenHeartbeatMs?: number;
}
// Sessions (openSession) whose loss their caller handles (leases, LISTEN) have these deadlines
// too, so that a silent network ends in a loss the caller recovers from; one-shot sessions
// (migrations, a rebuild's lock) have none: their statements may run long.

export function openPostgres(url: string, poolSize: number, options: PostgresOptions = {}): Database {
  // Pipelined: a connection sends a statement without waiting for the answer to the previous one
  // (pg answers them in order). Nothing here keeps a portal open (no cursors), which pipelining forbids.
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    pipeline: true,
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    ...(options.queryTimeoutMs ? { query_timeout: options.queryTimeoutMs } : {}),
    ...(options.connectTimeoutMs ? { connectionTimeoutMillis: options.connectTimeoutMs } : {}),
  });
  // An idle pooled connection killed by the server must not crash the process.
  pool.on("error", () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const listeners = new Set<Listener>();
  const sessions = new Set<SqlSession>();
  const backlog = new Backlog(options.queueTargetMs ?? 0);

  async function transaction<T>(fn: (tx: Tx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const client = await backlog.wait(() => pool.connect());
    let broken: Error | undefined;
    // The pool listens for errors only while a connection is idle: a connection cut between two
    // statements of ours would otherwise be an unhandled 'error' event (a crash).
    const onError = (error: Error) => (broken = error);
    client.on("error", onError);
    const state = { committed: false };
    try {
      const tx = pipelined(client, state);
      // Not awaited: BEGIN leaves with fn's first statements, one round trip for all.
      const begun = tx.simple(options.asyncCommit ? "BEGIN; SET LOCAL synchronous_commit TO off" : "BEGIN");
      begun.catch(() => undefined); // awaited below; BEGIN fails only with the connection, and fn with it
      const result = await fn(tx);
      await begun;
      if (!state.committed) {
        const committed = await client.query("COMMIT");
        if (committed.command !== "COMMIT")
          throw new Error("the transaction was rolled back (an earlier statement failed)");
      }
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
    const client = new pg.Client({
      connectionString: url,
      ...(onLost && options.queryTimeoutMs ? { query_timeout: options.queryTimeoutMs } : {}),
      ...(onLost && options.connectTimeoutMs ? { connectionTimeoutMillis: options.connectTimeoutMs } : {}),
    });
    // Lost only once it was had: a connection that fails to open rejects connect() below, and the
    // caller (which has no session yet) must not hear of it twice, before it has one.
    let opened = false;
    let closed = false;
    let lost = false;
    client.on("error", (error) => {
      lost = true;
      if (opened && !closed) onLost?.(error);
    });
    client.on("end", () => {
      lost = true;
      if (opened && !closed) onLost?.(new Error("session connection ended"));
    });
    await client.connect();
    opened = true;
    const session: SqlSession = {
      query: sqlOn(client).query,
      async exec(sql: string) {
        await client.query(sql);
      },
      async close() {
        if (closed) return;
        closed = true;
        sessions.delete(session);
        // Ending the connection frees its advisory locks only once the server's backend has
        // ended, which may be after end() returns here: free them first, so that a lease given
        // back is free when close() returns (a lost connection holds none any more).
        if (!lost) await client.query("SELECT pg_advisory_unlock_all()").catch(() => undefined);
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
    let heartbeat: NodeJS.Timeout | undefined;
    const heartbeatMs = options.listenHeartbeatMs ?? LISTEN_HEARTBEAT_MS;

    const connect = async (): Promise<void> => {
      const c = new pg.Client({
        connectionString: url,
        // What pg_stat_activity shows for it: its query is the heartbeat's most of the time.
        application_name: `listen ${channels.join(",")}`.slice(0, 63),
        query_timeout: options.queryTimeoutMs || heartbeatMs,
        ...(options.connectTimeoutMs ? { connectionTimeoutMillis: options.connectTimeoutMs } : {}),
      });
      c.on("notification", (msg) => handlers.onNotify(msg.channel, msg.payload ?? ""));
      const lost = (error: Error) => {
        if (closed || client !== c) return;
        client = undefined;
        clearInterval(heartbeat);
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
      clearInterval(heartbeat);
      let beating = false;
      heartbeat = setInterval(() => {
        // One at a time: while the last is still waiting for its answer, the next would only queue
        // behind it on the client (deprecated in pg 8, gone in pg 9). No answer within
        // query_timeout (a silent network): the connection counts as lost.
        if (beating) return;
        beating = true;
        c.query("SELECT 1").then(
          () => (beating = false),
          (error: Error) => lost(error),
        );
      }, heartbeatMs);
      heartbeat.unref();
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
        clearInterval(heartbeat);
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
    backlog,
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
