import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { Database } from "../../src/db/database";
import { migrate } from "../../src/db/migrate";
import { openEmbedded } from "../../src/db/pglite";
import { sql, type Identifier } from "../../src/db/sql";
import { ORDER_STREAM, PRODUCT_STREAM, type DomainEvent, type EventType } from "../../src/events";
import { projectBatch, type Projection, type ReadChange } from "../../src/projection/projection";
import type { EventMetadata, RecordedEvent } from "../../src/shared/events";

// Emmett-style projection specs: given(batch).and(batch).then(rows), on the embedded database.
// The projection's statements run as the projector runs them (one transaction per batch), and
// the rows are read back from its real tables, so a spec checks the SQL, not only its text.

const STREAM_TYPE = {
  ProductCreated: PRODUCT_STREAM,
  StockAdjusted: PRODUCT_STREAM,
  OrderPlaced: ORDER_STREAM,
  OrderPaid: ORDER_STREAM,
  OrderShipped: ORDER_STREAM,
  OrderCancelled: ORDER_STREAM,
} as const satisfies Record<EventType, string>;

const METADATA: EventMetadata = {
  correlationId: "projection-spec",
  causationId: null,
  actor: { id: null, role: "anonymous" },
  command: "projection-spec",
};

const EPOCH = Date.UTC(2026, 11, 1);
// Transaction ids unlike positions, so a projection that mixes them up stores the wrong one.
const TX_OFFSET = 1000n;

let lastPosition = 0n;
const streamVersions = new Map<string, number>();

type Recorded<T extends EventType> = RecordedEvent<Extract<DomainEvent, { type: T }>>;

export interface EventPlace {
  /** The stream's next version unless given: a stale event states an older one. */
  streamVersion?: number;
  /** One transaction per event unless given: the events of one command share their txId. */
  txId?: bigint;
  occurredAt?: Date;
  /** Who caused it; a fixed anonymous actor unless given. */
  metadata?: EventMetadata;
}

/**
 * An event as the log hands it to a projection. Each call takes the next log position and the
 * stream's next version, so events are in log order as a spec builds them; replaying a batch
 * means passing the same objects again.
 */
export function eventInStream<T extends EventType>(
  streamId: string,
  event: { type: T; data: Extract<DomainEvent, { type: T }>["data"] },
  place: EventPlace = {},
): Recorded<T> {
  const position = ++lastPosition;
  const streamVersion = place.streamVersion ?? (streamVersions.get(streamId) ?? 0) + 1;
  streamVersions.set(streamId, Math.max(streamVersion, streamVersions.get(streamId) ?? 0));
  const recorded: RecordedEvent = {
    ...event,
    streamId,
    streamType: STREAM_TYPE[event.type],
    streamVersion,
    position,
    txId: place.txId ?? TX_OFFSET + position,
    metadata: place.metadata ?? METADATA,
    occurredAt: place.occurredAt ?? new Date(EPOCH + Number(position) * 1000),
  };
  return recorded as Recorded<T>;
}

/**
 * One embedded database for a spec file, migrated once: initdb takes seconds, a spec
 * milliseconds. The returned function gives it to the specs once beforeAll has run.
 */
export function embeddedDatabase(): () => Database {
  let dir: string | undefined;
  let db: Database | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "projection-spec-"));
    db = await openEmbedded(dir);
    await migrate(db);
  });
  afterAll(async () => {
    await db?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => {
    if (!db) throw new Error("the embedded database opens in beforeAll: use it inside a test");
    return db;
  };
}

export type Row = Record<string, unknown>;

export interface Given<Names extends string> {
  /** Another batch, applied in its own transaction after the ones before it. */
  and(batch: RecordedEvent[]): Given<Names>;
  /**
   * The projection's tables hold exactly these rows (compared with toEqual, in the order of the
   * table's first column). An array for a projection of one table; otherwise rows by table name.
   */
  then(expected: Row[] | Record<Names, Row[]>): Promise<void>;
  /** The changes the projection announced, batch after batch. */
  thenChanges(expected: ReadChange[]): Promise<void>;
  /** The last batch leaves every row as the batches before it left them: a replay is harmless. */
  thenLastBatchChangesNothing(): Promise<void>;
}

/**
 * given(events).then(rows) for a projection. Every then… starts from empty tables, so specs in
 * one file share the database but not their rows.
 */
export function projectionSpec<Names extends string, Types extends EventType>(
  projection: Projection<Names, Types>,
  database: () => Database,
) {
  const tables = Object.entries(projection.tables) as [Names, Identifier][];
  const columnLists = new Map<Names, string[]>();

  /**
   * The table's columns that the projection writes, in order: not those Postgres generates from
   * them (read.products' search_key), which are its derivation, not the projection's, nor a row's
   * row_key, the id as a number, which every spec checks the same way (rowKeysHold).
   */
  async function columnsOf(name: Names, table: Identifier): Promise<string[]> {
    let columns = columnLists.get(name);
    if (columns === undefined) {
      const rows = await database().sql.query<{ column_name: string }>(sql`
        SELECT column_name FROM information_schema.columns
         WHERE table_schema = ${table.parts.at(-2) ?? "public"} AND table_name = ${table.name} AND is_generated = 'NEVER'
           AND column_name <> 'row_key'
         ORDER BY ordinal_position`);
      if (rows.length === 0) throw new Error(`${table.text} has no columns`);
      columns = rows.map((r) => r.column_name);
      columnLists.set(name, columns);
    }
    return columns;
  }

  async function reset(): Promise<void> {
    await database().transaction((tx) => tx.commit(tables.map(([, table]) => sql`TRUNCATE ${table}`)));
  }

  async function apply(batch: RecordedEvent[]): Promise<ReadChange[]> {
    const { changes, statements } = projectBatch(projection, batch, projection.tables);
    const claims = changes.filter((c) => c.updated !== undefined);
    const before = await Promise.all(claims.map(rowsOf));
    await database().transaction((tx) => tx.commit(statements));
    const after = await Promise.all(claims.map(rowsOf));
    claims.forEach((claim, i) => updatedHolds(claim, before[i]!, after[i]!));
    return changes;
  }

  /** The rows a change names, by id, every column (those Postgres generates too). */
  async function rowsOf(change: ReadChange): Promise<Map<string, Row>> {
    const table = projection.tables[change.table as Names];
    if (!table) throw new Error(`${projection.name} announced a change of ${change.table}, not one of its tables`);
    const rows = await database().sql.query<Row>(sql`SELECT * FROM ${table} WHERE id = ANY(${change.ids}::uuid[])`);
    return new Map(rows.map((row) => [String(row.id), row]));
  }

  /** A change that says which columns it `updated` existed before its batch, and the batch set no other column of it. */
  function updatedHolds(change: ReadChange, before: Map<string, Row>, after: Map<string, Row>): void {
    expect([...before.keys()].sort(), `${change.table}: rows said updated that did not exist before`).toEqual(
      [...change.ids].sort(),
    );
    expect([...after.keys()].sort(), `${change.table}: rows said updated that are gone`).toEqual(
      [...change.ids].sort(),
    );
    for (const [id, row] of after) {
      const was = before.get(id)!;
      const changed = Object.keys(row).filter((column) => JSON.stringify(row[column]) !== JSON.stringify(was[column]));
      expect(
        changed.filter((column) => !change.updated!.includes(column)),
        `${change.table} ${id}: columns set beyond those said updated`,
      ).toEqual([]);
    }
  }

  // Sorted in JavaScript, expected and actual alike, so both follow the same collation.
  async function ordered(name: Names, table: Identifier, rows: Row[]): Promise<Row[]> {
    const key = (await columnsOf(name, table))[0]!;
    return rows.toSorted((a, b) => {
      const x = String(a[key] ?? "");
      const y = String(b[key] ?? "");
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }

  async function read(): Promise<Record<Names, Row[]>> {
    const rows = {} as Record<Names, Row[]>;
    for (const [name, table] of tables) {
      const columns = sql.trusted((await columnsOf(name, table)).map((c) => sql.identifier(c).text).join(", "));
      rows[name] = await ordered(name, table, await database().sql.query<Row>(sql`SELECT ${columns} FROM ${table}`));
    }
    return rows;
  }

  /** Every row of a table with a row_key (a row a subscription pushes) has its id's, as "read".row_key(id) makes it. */
  async function rowKeysHold(): Promise<void> {
    for (const [, table] of tables) {
      const [keyed] = await database().sql.query<{ n: number }>(sql`
        SELECT count(*)::int AS n FROM information_schema.columns
         WHERE table_schema = ${table.parts.at(-2) ?? "public"} AND table_name = ${table.name} AND column_name = 'row_key'`);
      if (keyed!.n === 0) continue;
      const wrong = await database().sql.query<Row>(
        sql`SELECT id, row_key FROM ${table} WHERE row_key IS DISTINCT FROM "read".row_key(id)`,
      );
      expect(wrong, `${table.text}: rows whose row_key is not their id's`).toEqual([]);
    }
  }

  async function thenRows(batches: RecordedEvent[][], expected: Row[] | Record<Names, Row[]>): Promise<void> {
    await reset();
    for (const batch of batches) await apply(batch);
    await rowKeysHold();
    const actual = await read();
    if (Array.isArray(expected)) {
      if (tables.length !== 1) throw new Error(`${projection.name} has several tables: give rows by table name`);
      // One table: compared as a list, so a failure shows the rows themselves.
      const [name, table] = tables[0]!;
      expect(actual[name]).toEqual(await ordered(name, table, expected));
      return;
    }
    const wanted = {} as Record<Names, Row[]>;
    for (const [name, table] of tables) wanted[name] = await ordered(name, table, expected[name]);
    expect(actual).toEqual(wanted);
  }

  function given(...batches: RecordedEvent[][]): Given<Names> {
    return {
      and: (batch) => given(...batches, batch),

      then(expected, onRejected?: (error: unknown) => void) {
        // `await given(...)` calls this as a thenable, with resolve and reject: fail that await.
        if (typeof expected === "function") {
          onRejected?.(new Error("call .then(rows) on a spec, do not await given() itself"));
          return Promise.resolve();
        }
        return thenRows(batches, expected);
      },

      async thenChanges(expected) {
        await reset();
        const changes: ReadChange[] = [];
        for (const batch of batches) changes.push(...(await apply(batch)));
        expect(changes).toEqual(expected);
      },

      async thenLastBatchChangesNothing() {
        if (batches.length < 2) throw new Error("give the batches before the last one: given(batch).and(replayed)");
        await reset();
        for (const batch of batches.slice(0, -1)) await apply(batch);
        const before = await read();
        if (Object.values<Row[]>(before).every((rows) => rows.length === 0))
          throw new Error("the batches before the last one left no rows: a replay over nothing proves nothing");
        await apply(batches.at(-1)!);
        expect(await read()).toEqual(before);
      },
    };
  }

  return { given };
}
