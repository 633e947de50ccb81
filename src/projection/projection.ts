import { sql, type Fragment, type Identifier, type Statement } from "../db/sql";
import type { DomainEvent, EventType } from "../events";
import type { RecordedEvent } from "../shared/events";

/** The read tables a projection writes, by logical name. A rebuild hands it copies instead. */
export type TableMap<Names extends string = string> = Record<Names, Identifier>;

/** Which rows of which read table a batch changed: sent with NOTIFY read_changed to every API instance. */
export interface ReadChange {
  table: string;
  ids: string[];
  /**
   * Only when every one of these rows existed before the batch and the batch set no column but
   * these (the query side's caches then keep what does not depend on them: see catalogCache.ts).
   * Absent: rows may have been inserted or deleted, or any column changed.
   */
  updated?: readonly string[];
}

/**
 * The row_key of a read row a subscription pushes, from its id column: the id as a number, the
 * last part of the row's `position` cursor (src/query/rowPosition.ts). Written with the row by
 * the projection that inserts it (migration 20261210000000_read_row_key).
 */
export const rowKey = (idColumn: string): Fragment => sql.trusted(`"read"."row_key"(${idColumn})`);

/** What a projection makes of a batch: the rows it changes, and the statements that change them. */
export interface Projected {
  changes: ReadChange[];
  statements: Statement<unknown>[];
}

/**
 * A projection: events in → statements out, pure over the events it is given. It writes only its
 * own tables, never reads the write side, and is the only writer of its tables. The projector
 * sends its statements in one transaction with the checkpoint, so a batch is applied exactly
 * once; the rows' own guards make a batch applied again change nothing anyway.
 */
export interface Projection<Names extends string = string, Types extends EventType = EventType> {
  readonly name: string;
  readonly tables: TableMap<Names>;
  /** The event types it handles; the projector hands it only those. */
  readonly handles: readonly Types[];
  project(events: RecordedEvent<Extract<DomainEvent, { type: Types }>>[], tables: TableMap<Names>): Projected;
}

/** A projection, its event types inferred from `handles` (a type not in the event union does not compile). */
export function defineProjection<Names extends string, const Types extends EventType>(
  projection: Projection<Names, Types>,
): Projection<Names, Types> {
  return projection;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any projection, for the projector
export type AnyProjection = Projection<string, any>;

/** A projection's name and the event types it handles: what a mutation's read-your-writes needs to know of it. */
export type ProjectionOutline = Pick<AnyProjection, "name" | "handles">;

/** Whether the projection handles events of this type. */
const handlesType = (projection: ProjectionOutline, type: string) =>
  (projection.handles as readonly string[]).includes(type);

/** The projections whose read tables events of these types change; all of them when the types are not known. */
export function projectionsChangedBy(projections: readonly ProjectionOutline[], types: readonly string[] | undefined) {
  return projections.filter((p) => !types || types.some((type) => handlesType(p, type))).map((p) => p.name);
}

/** Projects a batch of the log: the projection sees only the events it handles. */
export function projectBatch(projection: AnyProjection, events: RecordedEvent[], tables: TableMap): Projected {
  const handled = events.filter((e) => handlesType(projection, e.type));
  return handled.length === 0 ? { changes: [], statements: [] } : projection.project(handled as never, tables);
}
