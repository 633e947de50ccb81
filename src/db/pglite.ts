import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setImmediate } from "node:timers/promises";
import { PGlite, types, type QueryOptions, type Transaction } from "@electric-sql/pglite";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "../generated/prisma/client";
import {
  toStatement,
  type Database,
  type Listener,
  type ListenHandlers,
  type RowsOf,
  type Sql,
  type SqlSession,
  type Tx,
} from "./database";
import type { Statement } from "./sql";
import { Backlog } from "./backlog";
import { isAlive } from "../shared/process";
import { copyEmbeddedTemplate } from "./pgliteTemplate";

// The embedded database: one PGlite (Postgres compiled to WASM, single-user mode) in this process.
//
// Concurrency model. PGlite is ONE backend, so everything shares one connection. It has two
// mutexes: a "transaction" mutex that every top-level query()/exec() takes per statement and
// that transaction(cb) holds for the whole callback, and a "query" mutex per statement inside.
// pglite-prisma-adapter runs each Prisma interactive transaction inside PGlite.transaction(), so
// Prisma transactions are serialised by PGlite itself (the next one's BEGIN waits until the
// previous one's COMMIT/ROLLBACK), and Prisma's plain queries wait for an open transaction.
// A raw `exec("BEGIN")` is NOT protected that way (the mutex is released after the statement),
// so other callers' statements would run inside it. Sessions therefore map BEGIN/COMMIT/ROLLBACK
// onto PGlite.transaction(): see openSession.
//
// Consequences for callers (there is no second connection to wait on):
// - inside prisma.$transaction(async tx => ...) use only `tx`; a query on `db.prisma` (or a
//   session) waits for the transaction to end, i.e. until Prisma's transaction timeout.
// - inside a session's BEGIN..COMMIT use only that session, for the same reason (no timeout).
// - session advisory locks are re-entrant on the single backend: always granted at once.

// Session results match pg's (src/db/postgres.ts): int8 as exact strings. PGlite's default
// parser returns a number, or a bigint above 2^53. xid8 and pg_snapshot come back as strings.
const SESSION_QUERY_OPTIONS: QueryOptions = {
  parsers: {
    [types.INT8]: (x: string) => x,
    1016: (x: string) => types.arrayParser(x, (s: string) => s, 1016), // int8[]
  },
};

const BEGIN = /^\s*(?:BEGIN(?:\s+(?:WORK|TRANSACTION))?|START\s+TRANSACTION)\b([^;]*);?\s*$/i;
const COMMIT = /^\s*(?:COMMIT|END)(?:\s+(?:WORK|TRANSACTION))?\s*;?\s*$/i;
const ROLLBACK = /^\s*(?:ROLLBACK|ABORT)(?:\s+(?:WORK|TRANSACTION))?\s*;?\s*$/i;

interface OpenTransaction {
  tx: Transaction;
  /** Lets PGlite.transaction's callback return: PGlite then COMMITs (unless rolled back). */
  finish(): void;
  /** Settles when PGlite has committed/rolled back and released its transaction mutex. */
  completed: Promise<void>;
}

/** The embedded database's folder is held by another live process (a server, say). */
export class EmbeddedDatabaseInUse extends Error {
  constructor(
    readonly location: string,
    readonly pid: number,
  ) {
    super(
      `the embedded database in ${location} is in use by process ${pid}; stop it first (or set DATA_DIR / DATABASE_URL)`,
    );
  }
}

/**
 * PGlite's files belong to one process: a second one (a server left running, a seed) would
 * corrupt them. A lock file with the owner's pid refuses that; a stale one (dead pid) is taken over.
 */
async function lockDataDir(location: string): Promise<() => Promise<void>> {
  const lockFile = join(location, "shop-api.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockFile, String(process.pid), { flag: "wx" });
      return () => rm(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(await readFile(lockFile, "utf8").catch(() => ""));
      if (owner && owner !== process.pid && isAlive(owner)) throw new EmbeddedDatabaseInUse(location, owner);
      await rm(lockFile, { force: true });
    }
  }
  throw new Error(`could not lock ${lockFile}`);
}

/**
 * PGlite runs Postgres in this thread and answers without I/O: its promises settle in the
 * microtask queue, so a loop of queries (a rebuild, say) never let the event loop turn, and the
 * server read no request until the loop ended (a catalog query sent as a rebuild of 40,000
 * events began waited 3.7 s, all of it; now p50 8 ms, at most 49). As a socket would, an
 * exchange with it now ends in a later turn of the event loop, after the I/O waiting meanwhile,
 * once it has run SLICE_MS without one (yielding at every exchange cost 50 us a query; once per
 * slice, nothing measurable). Every query, a transaction's too, goes through execProtocolRaw,
 * once per protocol exchange.
 */
function yieldAfterEachSlice(pg: PGlite): void {
  const exchange = pg.execProtocolRaw.bind(pg);
  let turned = performance.now();
  pg.execProtocolRaw = async (...args: Parameters<PGlite["execProtocolRaw"]>) => {
    const result = await exchange(...args);
    if (performance.now() - turned >= SLICE_MS) {
      await setImmediate();
      turned = performance.now();
    }
    return result;
  };
}

/** The longest PGlite's exchanges run on without letting the event loop turn. */
const SLICE_MS = 5;

/** queueTargetMs: as PostgresOptions's (the wait here is for PGlite's one connection). */
export async function openEmbedded(dataDir: string, options: { queueTargetMs?: number } = {}): Promise<Database> {
  const location = resolve(dataDir);
  await copyEmbeddedTemplate(location);
  await mkdir(location, { recursive: true });
  const unlock = await lockDataDir(location);
  let pg: PGlite;
  try {
    pg = await PGlite.create({ dataDir: location });
  } catch (error) {
    await unlock();
    throw error;
  }
  yieldAfterEachSlice(pg);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pg) });
  const listeners = new Set<Listener>();
  const sessions = new Set<SqlSession>();
  const backlog = new Backlog(options.queueTargetMs ?? 0);

  async function beginTransaction(modes: string): Promise<OpenTransaction> {
    let finish!: () => void;
    const released = new Promise<void>((r) => (finish = r));
    let completed!: Promise<void>;
    const tx = await new Promise<Transaction>((resolveTx, reject) => {
      completed = pg.transaction(async (t) => {
        resolveTx(t);
        await released;
      });
      completed.catch(reject); // BEGIN failed (or a no-op once started; commit errors surface in commit())
    });
    const open = { tx, finish, completed };
    if (modes.trim()) {
      try {
        await tx.exec(`SET TRANSACTION ${modes}`);
      } catch (error) {
        await endTransaction(open, "rollback").catch(() => undefined);
        throw error;
      }
    }
    return open;
  }

  async function endTransaction(open: OpenTransaction, how: "commit" | "rollback"): Promise<void> {
    try {
      if (how === "rollback" && !open.tx.closed) await open.tx.rollback();
    } finally {
      open.finish();
      // Rejects with TransactionAbortedError when COMMIT found the transaction aborted.
      await open.completed;
    }
  }

  const sql: Sql = {
    async query<T>(statement: Statement<T> | string, params?: unknown[]) {
      const { text, values } = toStatement(statement, params);
      return (await pg.query<T>(text, [...values], SESSION_QUERY_OPTIONS)).rows;
    },
  };

  // PGlite runs one statement at a time anyway: run() and commit() send them one after another.
  // asyncCommit: PGlite in this process has no separate WAL flush to skip.
  async function transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const open = await backlog.wait(() => beginTransaction(""));
    let committed = false;
    const query = async <R>(statement: Statement<R> | string, params?: unknown[]) => {
      const { text, values } = toStatement(statement, params);
      return (await open.tx.query<R>(text, [...values], SESSION_QUERY_OPTIONS)).rows;
    };
    const run = async <S extends readonly Statement<unknown>[]>(statements: S) => {
      const rows: unknown[][] = [];
      for (const statement of statements) rows.push(await query(statement));
      return rows as RowsOf<S>;
    };
    let result: T;
    try {
      result = await fn({
        query,
        run,
        async commit(statements) {
          const rows = await run(statements);
          committed = true;
          await endTransaction(open, "commit");
          return rows;
        },
      });
    } catch (error) {
      if (!committed) await endTransaction(open, "rollback").catch(() => undefined);
      throw error;
    }
    if (!committed) await endTransaction(open, "commit");
    return result;
  }

  async function openSession(): Promise<SqlSession> {
    // onLost is never called: there is no connection to lose.
    let closed = false;
    let open: OpenTransaction | undefined;
    // Calls on one session run one after another, like on a pg.Client (its query queue), so that
    // a statement issued right after exec("BEGIN") runs inside that transaction.
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(fn: () => Promise<T>): Promise<T> => {
      const result = queue.then(() => {
        if (closed) throw new Error("session is closed");
        return fn();
      });
      queue = result.catch(() => undefined);
      return result;
    };

    /** BEGIN/COMMIT/ROLLBACK (alone in the string) become a PGlite transaction; true if handled. */
    const control = async (sql: string): Promise<boolean> => {
      const begin = BEGIN.exec(sql);
      if (begin) {
        if (!open) open = await beginTransaction(begin[1] ?? "");
        return true; // BEGIN inside a transaction: Postgres only warns
      }
      const commit = COMMIT.test(sql);
      if (open && (commit || ROLLBACK.test(sql))) {
        const ending = open;
        open = undefined;
        await endTransaction(ending, commit ? "commit" : "rollback");
        return true;
      }
      return false;
    };

    const session: SqlSession = {
      query<T>(statement: Statement<T> | string, params?: unknown[]) {
        const { text, values } = toStatement(statement, params);
        return serial(async () => {
          if (values.length === 0 && (await control(text))) return [];
          const target = open?.tx ?? pg;
          return (await target.query<T>(text, [...values], SESSION_QUERY_OPTIONS)).rows;
        });
      },
      exec(sql: string) {
        return serial(async () => {
          if (await control(sql)) return;
          if (open) await open.tx.exec(sql, SESSION_QUERY_OPTIONS);
          else await pg.exec(sql, SESSION_QUERY_OPTIONS);
        });
      },
      async close() {
        if (closed) return;
        // Let queued calls finish, then roll back what is still open (as a closed connection would).
        await queue;
        closed = true;
        sessions.delete(session);
        const ending = open;
        open = undefined;
        if (ending) await endTransaction(ending, "rollback").catch(() => undefined);
      },
    };
    sessions.add(session);
    return session;
  }

  async function listen(channels: string[], handlers: ListenHandlers): Promise<Listener> {
    let closed = false;
    const unlisteners: Array<() => Promise<void>> = [];
    const close = async () => {
      closed = true;
      await Promise.all(unlisteners.splice(0).map((unlisten) => unlisten().catch(() => undefined)));
    };
    try {
      for (const channel of channels) {
        const unlisten = await pg.listen(
          // Quoted, as in postgres.ts, so the name keeps its case.
          `"${channel.replace(/"/g, "")}"`,
          (payload) => {
            if (closed) return;
            // PGlite calls this from a microtask: a throw would be an uncaught exception.
            try {
              handlers.onNotify(channel, payload);
            } catch (error) {
              process.emitWarning(error as Error);
            }
          },
        );
        unlisteners.push(unlisten);
      }
    } catch (error) {
      await close();
      throw error;
    }
    // onLost/onReconnect never fire: the database lives in this process.
    const listener: Listener = {
      async close() {
        listeners.delete(listener);
        await close();
      },
    };
    listeners.add(listener);
    return listener;
  }

  return {
    kind: "embedded",
    location,
    prisma,
    sql,
    transaction,
    backlog,
    openSession,
    listen,
    async close() {
      await Promise.all([...listeners].map((l) => l.close()));
      await Promise.all([...sessions].map((s) => s.close()));
      await prisma.$disconnect();
      if (!pg.closed) await pg.close();
      await unlock();
    },
  };
}
