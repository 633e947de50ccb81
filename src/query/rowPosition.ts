import { badInput } from "../shared/errors";
import type { LogPosition } from "../shared/events";
import { uuidNumber, uuidText } from "../shared/ids";

/**
 * A read row's `position`: the place in the log of the last event applied to it, (txId,
 * position), and the row's id, as one opaque decimal string:
 * ((txId · 10^19 + position + 1) · 10^39 + the id as a 128-bit number).
 *
 * Commits land out of position order, and the projector applies events in (txId, position)
 * order, so that pair, not the position alone, tells which rows changed after a row a client saw
 * (a row changed by an older transaction that committed late has a smaller position but a
 * greater pair than rows applied before it). The id breaks ties between the rows one event
 * changed (an order's products): pushed in id order, the last one a client received is a place
 * to resume from even between two of them. The number orders rows as (txId, position, id) do,
 * and is at least 10^39 (a position is below 2^63 < 10^19, an id below 2^128 < 10^39).
 *
 * A cursor below 10^39 is a bare log place, txId · 10^19 + position (this API's row positions
 * before ids were added, held by clients across a deploy) or a mutation's `position` (its
 * transaction unknown here: taken as 0, before every event of the log's reading order, so
 * everything is replayed rather than something skipped). It stands after every row of its event.
 */
export interface RowPosition extends LogPosition {
  /** The row, among those of the event; absent: after all of them. */
  id?: string;
}

const EVENT = 10n ** 19n;
const ID = 10n ** 39n;
/**
 * The SQL expression of a row's position, from its applied_tx (xid8), applied_pos (bigint) and
 * row_key columns: row_key is the id as a number, "read".row_key(id), written with the row by
 * the projection that inserts it (migration 20261210000000_read_row_key says why it is stored).
 */
export const rowPositionSql = (table = "") =>
  `(((${table}applied_tx::text)::numeric * ${EVENT} + ${table}applied_pos + 1) * ${ID} + ${table}row_key)::text`;

const MAX_ID = ID - 1n;
/** The id that orders a bound in SQL, as (applied_tx, applied_pos, id) > (txId, position, idOf(at)): the greatest uuid without one. */
export const idOf = (at: RowPosition): string => at.id ?? "ffffffff-ffff-ffff-ffff-ffffffffffff";

/** The position of row `id` at `at`; without an id, a bound after every row that event changed. */
export const encodeRowPosition = (at: RowPosition): string =>
  ((at.txId * EVENT + at.position + 1n) * ID + (at.id === undefined ? MAX_ID : uuidNumber(at.id))).toString();

/** A client's `after`: a row's position, or a bare log place (see above). */
export function decodeRowPosition(cursor: string, field = "after"): RowPosition {
  const invalid = () => badInput(`${field} is not a position returned by this API`, { field });
  if (!/^[0-9]{1,80}$/.test(cursor)) throw invalid();
  const value = BigInt(cursor);
  const [event, id] = value < ID ? [value, undefined] : [value / ID - 1n, value % ID];
  const at: RowPosition = { txId: event / EVENT, position: event % EVENT };
  // What the columns hold: an xid8 (64 bits), a bigint (63) and a uuid (128).
  if (at.txId >= 2n ** 64n || at.position >= 2n ** 63n || (id !== undefined && id >= 2n ** 128n)) throw invalid();
  return id === undefined ? at : { ...at, id: uuidText(id) };
}
