import { sql, type Fragment } from "./sql";

/** Up to this many rows, a batch's rows are listed through write.each or read.each; past it, through unnest(). */
const FEW_ROWS = 32;

/** The SQL type of a column's values. */
export type ColumnType = "uuid" | "int" | "bigint" | "text" | "timestamptz";

/** A column of a batch's rows: its values (one per row, in the rows' order) and their SQL type. */
export type Column = readonly [values: readonly unknown[], type: ColumnType];

/**
 * A statement's rows, given as typed columns of one length (the first is the key its statement
 * joins a table on), as the FROM item `alias(name, …)`, for a statement on `side`'s tables
 * (each side has its own `each`: a read database of its own has no write schema). Typed
 * arrays, not a JSON recordset, whose 100 guessed rows could have the planner scan a small table.
 *
 * A command's stock moves and a live projector batch have a few rows: listed through `each`,
 * declared as one row, they get a plan of key lookups that Postgres keeps. Through unnest() they
 * were planned anew at every call: a generic plan counts an array parameter as 10 rows and then
 * prefers a full scan, so Postgres never keeps it (see the migration of write.each). A
 * rebuild's or a catch-up's batch has many: unnest(), planned for the count at hand, where key
 * lookups one row at a time would cost more.
 */
export function batchRows(side: "write" | "read", alias: string, columns: Record<string, Column>): Fragment {
  const entries = Object.entries(columns);
  const [keyName, [keys, keyType]] = entries[0]!;
  const as = sql.trusted(`${alias}(${entries.map(([name]) => name).join(", ")})`);
  if (keys.length <= FEW_ROWS) {
    const picked = entries
      .slice(1)
      .map(([name, [values, type]]) => sql.fragment`(${values}::${arrayOf(type)})[k.n] AS ${sql.trusted(name)}`);
    return sql.fragment`(SELECT k.${sql.trusted(keyName)}, ${sql.join(picked, ", ")}
                           FROM ${sql.trusted(`"${side}"."each"`)}(${keys}::${arrayOf(keyType)}) AS k(${sql.trusted(keyName)}, n)) AS ${as}`;
  }
  const arrays = entries.map(([, [values, type]]) => sql.fragment`${values}::${arrayOf(type)}`);
  return sql.fragment`unnest(${sql.join(arrays, ", ")}) AS ${as}`;
}

const arrayOf = (type: ColumnType): Fragment => sql.trusted(`${type}[]`);
