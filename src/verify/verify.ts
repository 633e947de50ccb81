import { setTimeout as delay } from "node:timers/promises";
import type { Database } from "../db/database";
import { Prisma } from "../generated/prisma/client";
import { allProjections } from "../projection/projections";
import { checkCatalog, checkCatalogCounts, checkEventLog, checkOrders, countAll, type Counts } from "./checks";
import {
  countEventsAfter,
  hasReadTables,
  hasWriteTables,
  readCatalogCounts,
  readCatalogRows,
  readCheckpoints,
  readOrderRows,
  readWriteSide,
  type Reader,
  type WriteSide,
} from "./sides";

/**
 * The read tables each projection owns: read them (from the read side), then compare them with
 * what the write side says they should hold.
 */
const READ_CHECKS: Record<string, (read: Reader) => Promise<(write: WriteSide) => string[]>> = {
  catalog: async (read) => {
    const [rows, counts] = await Promise.all([readCatalogRows(read), readCatalogCounts(read)]);
    return (write) => [...checkCatalog(write, rows), ...checkCatalogCounts(rows, counts)];
  },
  orders: async (read) => {
    const rows = await readOrderRows(read);
    return (write) => checkOrders(write, rows);
  },
};

// Reading a large event log whole can take longer than Prisma's default 5 s for a transaction.
const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;
const SNAPSHOT_MAX_WAIT_MS = 10_000;

export interface VerifyOptions {
  /** How long to wait for the projections to catch up before reporting them as behind. */
  waitMs?: number;
  pollMs?: number;
}

export interface VerifyResult {
  ok: boolean;
  problems: string[];
  /** Worth knowing, not a failure (e.g. a projection verify has no check for). */
  notes: string[];
  counts: Counts;
  /** Projections whose read tables were compared. */
  compared: string[];
}

/** Where each side is read from: one transaction (a snapshot) per side. */
interface Sides {
  read: Reader;
  write: Reader;
}

interface ProjectionState {
  name: string;
  status: string | null;
  lastError: string | null;
  /** Committed events after the checkpoint, in the write side's snapshot. */
  behind: number;
}

/**
 * Recomputes every read table from the write model and the event log, and checks the event log
 * against the write tables, from a consistent snapshot of each side: a projection counts as
 * caught up only if it has applied every event committed in the write side's snapshot, and only
 * then are its tables compared. Writes nothing.
 */
export async function verify(
  db: Pick<Database, "prisma">,
  options: VerifyOptions = {},
  /** The read database, when the read side has one of its own. */
  readDb: Pick<Database, "prisma"> = db,
): Promise<VerifyResult> {
  const waitMs = options.waitMs ?? 10_000;
  const pollMs = options.pollMs ?? 100;
  const names = allProjections.map((p) => p.name).sort();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const mayWait = Date.now() < deadline;
    const result =
      readDb === db
        ? // One database: one transaction is a snapshot of both sides.
          await snapshot(db, (tx) => attempt({ read: tx, write: tx }, names, mayWait))
        : // The read side's snapshot is taken first (attempt reads it first): see attempt.
          await snapshot(readDb, (read) => snapshot(db, (write) => attempt({ read, write }, names, mayWait)));
    if (result) return result;
    await delay(pollMs);
  }
}

/** fn in a repeatable-read, read-only transaction of the database. */
function snapshot<T>(db: Pick<Database, "prisma">, fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
  return db.prisma.$transaction(
    async (tx) => {
      // pglite-prisma-adapter sends the isolation level before its BEGIN, where it has no
      // effect: set it (and READ ONLY) inside the transaction too, before the first read.
      await tx.$executeRaw`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`;
      return fn(tx);
    },
    {
      isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead,
      timeout: SNAPSHOT_TIMEOUT_MS,
      maxWait: SNAPSHOT_MAX_WAIT_MS,
    },
  );
}

/**
 * One attempt; undefined when a projection is behind and there is still time to wait for it.
 *
 * Each side is read only through its own reader. Once they are separate databases, each reader
 * is a snapshot of its own, and the read side's must be taken first (its first query comes
 * first): whatever a projection had applied in it was committed before the write side's
 * snapshot, so "0 events behind" then means the read tables reflect exactly the write side's events.
 */
async function attempt(sides: Sides, names: string[], mayWait: boolean): Promise<VerifyResult | undefined> {
  const hasRead = await hasReadTables(sides.read);
  const hasWrite = await hasWriteTables(sides.write);
  if (!hasRead || !hasWrite) {
    const none = { products: 0, orders: 0, events: 0 };
    return {
      ok: false,
      problems: ["the database has no write/read tables: start the server once (it applies the migrations)"],
      notes: [],
      counts: none,
      compared: [],
    };
  }

  const states = await projectionStates(sides, names);
  const behind = states.filter((s) => s.status !== "FAILED" && (s.status !== "RUNNING" || s.behind > 0));
  if (behind.length > 0 && mayWait) return undefined;

  // Per projection: its problems, or the comparison to make once the write side is read.
  const outcomes: (string[] | ((write: WriteSide) => string[]))[] = [];
  const notes: string[] = [];
  const compared: string[] = [];
  for (const state of states) {
    if (state.status === "FAILED") {
      outcomes.push([`projection ${state.name} is FAILED: ${state.lastError ?? "(no error recorded)"}`]);
    } else if (state.status === null) {
      outcomes.push([
        `projection ${state.name} has no checkpoint (the projector has not run on this database): ${state.behind} events behind`,
      ]);
    } else if (state.status !== "RUNNING" || state.behind > 0) {
      outcomes.push([
        `projection ${state.name} is ${state.behind} events behind${state.status !== "RUNNING" ? ` (status ${state.status})` : ""}`,
      ]);
    } else {
      const check = READ_CHECKS[state.name];
      if (!check) {
        notes.push(`projection ${state.name}: verify has no check for its tables (add one in src/verify/checks.ts)`);
        continue;
      }
      outcomes.push(await check(sides.read));
      compared.push(state.name);
    }
  }

  const write = await readWriteSide(sides.write);
  const problems = outcomes.flatMap((o) => (typeof o === "function" ? o(write) : o));
  problems.push(...checkEventLog(write, new Date()));
  return { ok: problems.length === 0, problems, notes, counts: countAll(write), compared };
}

/** Each projection's checkpoint (read side) and the events after it (write side). */
async function projectionStates(sides: Sides, names: string[]): Promise<ProjectionState[]> {
  const checkpoints = new Map((await readCheckpoints(sides.read)).map((c) => [c.name, c]));
  const states: ProjectionState[] = [];
  for (const name of names) {
    const c = checkpoints.get(name);
    const behind = await countEventsAfter(sides.write, c ?? null);
    states.push({ name, status: c?.status ?? null, lastError: c?.lastError ?? null, behind });
  }
  return states;
}

/** The report `npm run verify` prints: the problems (at most maxLines, then a count) and a final verdict. */
export function formatReport(result: VerifyResult, maxLines = 50): string {
  const lines = [...result.notes.map((n) => `note: ${n}`)];
  lines.push(...result.problems.slice(0, maxLines));
  if (result.problems.length > maxLines) lines.push(`... and ${result.problems.length - maxLines} more`);
  const { products, orders, events } = result.counts;
  lines.push(
    result.ok
      ? `verify: OK (${products} products, ${orders} orders, ${events} events)`
      : `verify: ${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}`,
  );
  return lines.join("\n");
}
