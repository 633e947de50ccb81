import { setTimeout as delay } from "node:timers/promises";
import type { Database, SqlSession } from "../db/database";
import { allProjections } from "../projection/projections";
import { checkCatalog, checkEventLog, checkOrders, countAll, projectionStates, type Counts } from "./checks";

/** Read tables each projection owns, recomputed from the write model and the event log. */
const READ_CHECKS: Record<string, (s: SqlSession) => Promise<string[]>> = {
  catalog: checkCatalog,
  orders: checkOrders,
};

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

/**
 * Recomputes every read table from the write model and the event log, and checks the event log
 * against the write tables, in ONE read-only snapshot (REPEATABLE READ): a projection counts as
 * caught up only if it has applied every event committed in that snapshot, and only then are
 * its tables compared. Writes nothing.
 */
export async function verify(db: Pick<Database, "openSession">, options: VerifyOptions = {}): Promise<VerifyResult> {
  const waitMs = options.waitMs ?? 10_000;
  const pollMs = options.pollMs ?? 100;
  const names = allProjections.map((p) => p.name);
  const deadline = Date.now() + waitMs;
  const session = await db.openSession();
  try {
    for (;;) {
      const result = await inSnapshot(session, names, Date.now() < deadline);
      if (result) return result;
      await delay(pollMs);
    }
  } finally {
    await session.close();
  }
}

/** One attempt; undefined when a projection is behind and there is still time to wait for it. */
async function inSnapshot(session: SqlSession, names: string[], mayWait: boolean): Promise<VerifyResult | undefined> {
  await session.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  try {
    const [schema] = await session.query<{ ok: boolean }>(
      `SELECT to_regclass('"write".events') IS NOT NULL AND to_regclass('"read".projection_checkpoints') IS NOT NULL AS ok`,
    );
    if (!schema?.ok) {
      const none = { products: 0, orders: 0, events: 0 };
      return {
        ok: false,
        problems: ["the database has no write/read tables: start the server once (it applies the migrations)"],
        notes: [],
        counts: none,
        compared: [],
      };
    }

    const problems: string[] = [];
    const notes: string[] = [];
    const compared: string[] = [];
    const states = await projectionStates(session, names);
    const behind = states.filter((s) => s.status !== "FAILED" && (s.status !== "RUNNING" || s.behind > 0));
    if (behind.length > 0 && mayWait) return undefined;

    for (const state of states) {
      if (state.status === "FAILED") {
        problems.push(`projection ${state.name} is FAILED: ${state.lastError ?? "(no error recorded)"}`);
      } else if (state.status === null) {
        problems.push(
          `projection ${state.name} has no checkpoint (the projector has not run on this database): ${state.behind} events behind`,
        );
      } else if (state.status !== "RUNNING" || state.behind > 0) {
        problems.push(
          `projection ${state.name} is ${state.behind} events behind${state.status !== "RUNNING" ? ` (status ${state.status})` : ""}`,
        );
      } else {
        const check = READ_CHECKS[state.name];
        if (!check) {
          notes.push(`projection ${state.name}: verify has no check for its tables (add one in src/verify/checks.ts)`);
          continue;
        }
        problems.push(...(await check(session)));
        compared.push(state.name);
      }
    }
    problems.push(...(await checkEventLog(session)));
    const counts = await countAll(session);
    return { ok: problems.length === 0, problems, notes, counts, compared };
  } finally {
    await session.exec("ROLLBACK");
  }
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
