import type { Database, Tx } from "../db/database";
import { readEventsAfter, sessionReader } from "../eventLog/eventLog";
import type { Logger } from "../logger";
import { LOG_START, type LogPosition, type RecordedEvent } from "../shared/events";
import { deleteCheckpoint, lockCheckpoint, markFailed, resetCheckpoint, saveCheckpoint } from "./checkpoints";
import type { Projection, TableMap } from "./projection";
import { wakeProjectors } from "./projector";

export interface RebuildResult {
  events: number;
  seconds: number;
}

const shadowName = (table: string) => table.replace(/"$/, '__rebuild"');
const bare = (qualified: string) => qualified.split(".").pop()!.replace(/"/g, "");

/**
 * Rebuilds a projection from position 0 into copies of its tables while the live tables keep
 * serving, then swaps them in one short transaction:
 *   1. CREATE TABLE <t>__rebuild (LIKE <t> INCLUDING ALL), checkpoint "<name>@rebuild" at 0;
 *   2. apply the whole log in batches (gap-safe, like the projector) into the copies;
 *   3. lock the live checkpoint (the projector waits), apply what arrived meanwhile, rename the
 *      copies over the live tables (index names restored), move the checkpoint, drop the old.
 */
export async function rebuildProjection(db: Database, projection: Projection, options: { batchSize: number; logger: Logger }): Promise<RebuildResult> {
  const started = performance.now();
  const shadowTables = Object.fromEntries(Object.entries(projection.tables).map(([k, v]) => [k, shadowName(v)])) as TableMap;
  const shadowCheckpoint = `${projection.name}@rebuild`;
  const lockSession = await db.openSession();
  let events = 0;
  try {
    const [lock] = await lockSession.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtext($1)) AS locked", [`rebuild:${projection.name}`]);
    if (!lock?.locked) throw new Error(`a rebuild of ${projection.name} is already running`);
    const reader = sessionReader(lockSession);

    await db.prisma.$transaction(async (tx) => {
      for (const [logical, live] of Object.entries(projection.tables)) {
        await tx.$executeRawUnsafe(`DROP TABLE IF EXISTS ${shadowTables[logical]}`);
        await tx.$executeRawUnsafe(`CREATE TABLE ${shadowTables[logical]} (LIKE ${live} INCLUDING ALL)`);
        // Secondary indexes are built once at the end, not maintained row by row while filling.
        for (const index of await secondaryIndexes(tx, shadowTables[logical]!)) await tx.$executeRawUnsafe(`DROP INDEX "read"."${index.name}"`);
      }
      await resetCheckpoint(tx, shadowCheckpoint, "REBUILDING");
    });

    // Catch up outside the swap, batch by batch, so the live tables are locked only briefly.
    let at: LogPosition = LOG_START;
    for (;;) {
      // Only this rebuild writes the copies (advisory lock), so the log can be read outside the
      // batch's transaction, through the session: plain rows, cheaper than Prisma's conversion.
      const batch = await readEventsAfter(reader, at, options.batchSize);
      const { applied, next } = await db.prisma.$transaction((tx) => applyInto(tx, projection, shadowTables, shadowCheckpoint, at, batch), { timeout: 300_000 });
      events += applied;
      at = next;
      if (applied < options.batchSize) break;
      if (events % (options.batchSize * 20) === 0) options.logger.info({ projection: projection.name, events }, "rebuild: progress");
    }

    await db.prisma.$transaction(
      async (tx) => {
        for (const [logical, live] of Object.entries(projection.tables)) {
          for (const index of await secondaryIndexes(tx, live)) {
            await tx.$executeRawUnsafe(index.def.replace(/^CREATE (UNIQUE )?INDEX \S+ ON \S+ /, `CREATE $1INDEX "${index.name}__rb" ON ${shadowTables[logical]} `));
          }
        }
      },
      { timeout: 300_000 },
    );

    await db.prisma.$transaction(
      async (tx) => {
        const live = await lockCheckpoint(tx, projection.name);
        if (!live) throw new Error(`unknown projection ${projection.name}`);
        for (;;) {
          const { applied, next } = await applyInto(tx, projection, shadowTables, shadowCheckpoint, at, await readEventsAfter(tx, at, options.batchSize));
          events += applied;
          at = next;
          if (applied < options.batchSize) break;
        }
        for (const [logical, liveTable] of Object.entries(projection.tables)) await swapTable(tx, liveTable, shadowTables[logical]!);
        await saveCheckpoint(tx, projection.name, at, "RUNNING", []);
        await deleteCheckpoint(tx, shadowCheckpoint);
        await wakeProjectors(tx);
      },
      { timeout: 300_000 },
    );
    return { events, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    await markFailed(db.prisma, shadowCheckpoint, String((error as Error)?.message ?? error), null).catch(() => undefined);
    throw error;
  } finally {
    await lockSession.close();
  }
}

async function applyInto(tx: Tx, projection: Projection, tables: TableMap, checkpoint: string, after: LogPosition, events: RecordedEvent[]) {
  const last = events.at(-1);
  if (!last) return { applied: 0, next: after };
  await projection.apply(tx, events, tables);
  const next = { txId: last.txId, position: last.position };
  await saveCheckpoint(tx, checkpoint, next, "REBUILDING");
  return { applied: events.length, next };
}

/** Indexes that back no constraint (not the primary key, not unique), with their definitions. */
function secondaryIndexes(tx: Tx, table: string) {
  return tx.$queryRawUnsafe<{ name: string; def: string }[]>(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND NOT i.indisunique`,
    table,
  );
}

/** Renames the rebuilt table over the live one and gives its indexes the live indexes' names. */
async function swapTable(tx: Tx, live: string, shadow: string): Promise<void> {
  const liveName = bare(live);
  const shadowBare = bare(shadow);
  const indexes = async (table: string) =>
    tx.$queryRawUnsafe<{ name: string; def: string }[]>(
      `SELECT indexname AS name, regexp_replace(indexdef, '^CREATE (UNIQUE )?INDEX \\S+ ON \\S+ ', '') AS def
         FROM pg_indexes WHERE schemaname = 'read' AND tablename = $1`,
      table,
    );
  const liveIndexes = await indexes(liveName);
  const shadowIndexes = await indexes(shadowBare);
  await tx.$executeRawUnsafe(`DROP TABLE ${live}`);
  await tx.$executeRawUnsafe(`ALTER TABLE ${shadow} RENAME TO "${liveName}"`);
  for (const index of shadowIndexes) {
    const original = liveIndexes.find((l) => l.def === index.def);
    if (original && original.name !== index.name) await tx.$executeRawUnsafe(`ALTER INDEX "read"."${index.name}" RENAME TO "${original.name}"`);
  }
}

