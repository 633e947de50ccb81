import { badInput } from "../shared/errors";
import type { LogPosition } from "../shared/events";

/**
 * A read row's `position`: the place in the log of the last event applied to it, (txId,
 * position), as one opaque decimal string: txId · 10^19 + position (a position is a bigint,
 * below 2^63 < 10^19). Commits land out of position order, and the projector applies events in
 * (txId, position) order, so that pair, not the position alone, tells which rows changed after
 * a row a client saw (a row changed by an older transaction that committed late has a smaller
 * position but a greater pair than rows applied before it).
 */
const SCALE = 10n ** 19n;

/** The SQL expression of a row's position, from its applied_tx (xid8) and applied_pos (bigint) columns. */
export const rowPositionSql = (table = "") =>
  `((${table}applied_tx::text)::numeric * ${SCALE} + ${table}applied_pos)::text`;

export const encodeRowPosition = (at: LogPosition): string => (at.txId * SCALE + at.position).toString();

/**
 * The log place a client's `after` names. A row's position, or a mutation's `position` (a plain
 * log position, its transaction unknown here: taken as (0, position), before every event of
 * the log's reading order, so everything is replayed rather than something skipped).
 */
export function decodeRowPosition(cursor: string, field = "after"): LogPosition {
  if (!/^[0-9]{1,60}$/.test(cursor)) throw badInput(`${field} is not a position returned by this API`, { field });
  const value = BigInt(cursor);
  return { txId: value / SCALE, position: value % SCALE };
}
