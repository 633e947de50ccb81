import type { Sql } from "../db/database";
import type { RecordedEvent } from "../shared/events";

/** The read table a projection writes, by logical name → qualified SQL name. Rebuilds write to a copy. */
export type TableMap<Names extends string = string> = Record<Names, string>;

/** Which rows of which read table a batch changed: sent with NOTIFY read_changed to every API instance. */
export interface ReadChange {
  table: string;
  ids: string[];
}

/** What apply hands back: the rows it changes, known from the events alone, and its writes. */
export interface Applied {
  changes: ReadChange[];
  /**
   * The batch's statements, issued and not awaited: the projector sends the checkpoint right
   * behind them, in the same round trip, and awaits both before COMMIT. Throw only before
   * issuing them: a statement issued and then dropped would fail unheard.
   */
  written: Promise<unknown>;
}

/**
 * A projection: events in → rows out. It is the only writer of its tables. `apply` runs inside
 * the projector's transaction together with the checkpoint, so a batch is applied exactly
 * once; the row guards make a replay harmless anyway.
 */
export interface Projection<Names extends string = string> {
  readonly name: string;
  /** Logical table name → live table in schema "read". */
  readonly tables: TableMap<Names>;
  apply(sql: Sql, events: RecordedEvent[], tables: TableMap<Names>): Applied;
}
