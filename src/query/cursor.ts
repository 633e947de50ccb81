import type { Sql } from "../db/database";
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
  /** `WITH matches AS (…)`: the rows matching the filter. */
  matches: string;
  /** The page: `SELECT … FROM matches … LIMIT take + 1` (take + 1 rows tell whether there is a next page). */
  page: string;
  /** The columns of a row, over the page as `p`. */
  columns: string;
  /** The page's order, over `p`. */
  orderBy: string;
  params: unknown[];
  /** The count in a statement of its own, for a caller that did not say it would ask. */
  count(): Promise<number>;
  /** A query of one row whose column `total` is the count; default: `count(*)` of matches. */
  total?: string;
}

/**
 * The count of a read table's rows matching `where`, in a statement of its own: a page's count for
 * a caller that did not say it would ask. The parameters are copied as they are now (the page's
 * statement goes on adding its own).
 */
export function countMatching(sql: Sql, table: string, where: string, params: unknown[]): () => Promise<number> {
  const whereParams = [...params];
  return async () => {
    const [row] = await sql.query<{ total: number }>(
      `SELECT count(*)::int AS total FROM ${table} ${where}`,
      whereParams,
    );
    return row?.total ?? 0;
  };
}

/**
 * Runs a keyset page. With `withCount`, the count of `matches` comes in the same statement: one
 * row even when the page is empty (then with null columns), so the count always comes back.
 */
export async function fetchPage<T extends { id: string }>(
  sql: Sql,
  query: PageQuery,
  take: number,
  withCount: boolean,
): Promise<Page<T>> {
  const {
    matches,
    page,
    columns,
    orderBy,
    params,
    total: totalQuery = "SELECT count(*)::int AS total FROM matches",
  } = query;
  if (!withCount) {
    const rows = await sql.query<T>(`${matches} SELECT ${columns} FROM (${page}) p ORDER BY ${orderBy}`, params);
    return { rows: rows.slice(0, take), hasNextPage: rows.length > take, count: query.count };
  }
  const rows = await sql.query<T & { total: number }>(
    `${matches} SELECT c.total, ${columns} FROM (${totalQuery}) c LEFT JOIN (${page}) p ON true ORDER BY ${orderBy}`,
    params,
  );
  const total = rows[0]?.total ?? 0;
  const found: T[] = [];
  for (const { total: _, ...row } of rows) if (row.id !== null) found.push(row as unknown as T);
  return { rows: found.slice(0, take), hasNextPage: found.length > take, count: () => Promise.resolve(total) };
}
