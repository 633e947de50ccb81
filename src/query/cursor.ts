import type { Sql } from "../db/database";
import { sql, type Fragment, type Identifier } from "../db/sql";
import { badInput } from "../shared/errors";
import { isUuid } from "../shared/ids";

export const MAX_PAGE_SIZE = 100;

export function pageSize(first: number | null | undefined, fallback = 20): number {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAGE_SIZE)
    throw badInput(`first must be between 0 and ${MAX_PAGE_SIZE}`, { field: "first" });
  return n;
}

/** Opaque keyset cursor: the sort key of the last row of a page, [its sort value, its id]. */
export function encodeCursor(key: [string, string]): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function decodeCursor(cursor: string | null | undefined): [string, string] | undefined {
  if (cursor === null || cursor === undefined) return undefined;
  try {
    const key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    // The id is checked here: a forged one would otherwise fail later, in the query's uuid cast.
    if (
      Array.isArray(key) &&
      key.length === 2 &&
      typeof key[0] === "string" &&
      typeof key[1] === "string" &&
      isUuid(key[1])
    )
      return key as [string, string];
  } catch {
    // fall through
  }
  throw badInput("after is not a cursor returned by this API", { field: "after" });
}

export interface ListOptions {
  /** The caller will ask for the count (totalCount is selected): fetch it with the page. */
  count?: boolean;
}

export interface Page<T> {
  rows: T[];
  hasNextPage: boolean;
  /** Rows matching the filter over all pages; counted only if asked for. */
  count(): Promise<number>;
}

export interface PageQuery {
  /** The rows that match the filter: a SELECT, which fetchPage names for the page and the count. */
  matching: Fragment;
  /**
   * Postgres finds the matching rows once for both the page and the count (for a search through
   * an index that is not in the page's order), or reads them inline in each (a range of an index
   * in the page's order, whose page stops after its rows).
   */
  materialized: boolean;
  /** The page, over the matching rows: at most take + 1 in order (take + 1 tell whether there is a next page). */
  page(matches: Identifier): Fragment;
  /** The columns of a row as the caller gets them, over the page's rows. */
  columns: Fragment;
  /** The page's order, over its rows. */
  orderBy: Fragment;
  /** A query of one row whose column `total` is the count; default: count(*) of the matching rows. */
  total?: Fragment;
  /** The count in a statement of its own, for a caller that did not say it would ask. */
  count(): Promise<number>;
}

/** The count of the rows `matching` selects, in a statement of its own: a page's count for a caller that did not say it would ask. */
export function countMatching(db: Sql, matching: Fragment): () => Promise<number> {
  return async () => {
    const [row] = await db.query<{ total: number }>(sql`SELECT count(*)::int AS total FROM (${matching}) m`);
    return row?.total ?? 0;
  };
}

const MATCHES = sql.identifier("matches");

/**
 * Runs a keyset page. With `withCount`, the count of the matching rows comes in the same
 * statement: one row even when the page is empty (then with null columns), so the count always
 * comes back.
 */
export async function fetchPage<T extends { id: string }>(
  db: Sql,
  query: PageQuery,
  take: number,
  withCount: boolean,
): Promise<Page<T>> {
  const { matching, columns, orderBy } = query;
  const matches = query.materialized
    ? sql.fragment`WITH ${MATCHES} AS MATERIALIZED (${matching})`
    : sql.fragment`WITH ${MATCHES} AS NOT MATERIALIZED (${matching})`;
  const page = query.page(MATCHES);
  if (!withCount) {
    const rows = await db.query<T>(sql`${matches} SELECT ${columns} FROM (${page}) p ORDER BY ${orderBy}`);
    return { rows: rows.slice(0, take), hasNextPage: rows.length > take, count: query.count };
  }
  const total = query.total ?? sql.fragment`SELECT count(*)::int AS total FROM ${MATCHES}`;
  const rows = await db.query<T & { total: number }>(
    sql`${matches} SELECT c.total, ${columns} FROM (${total}) c LEFT JOIN (${page}) p ON true ORDER BY ${orderBy}`,
  );
  const counted = rows[0]?.total ?? 0;
  const found: T[] = [];
  for (const { total: _, ...row } of rows) if (row.id !== null) found.push(row as unknown as T);
  return { rows: found.slice(0, take), hasNextPage: found.length > take, count: () => Promise.resolve(counted) };
}
