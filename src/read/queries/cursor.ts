import { badInput } from "../../shared/errors";

export const MAX_PAGE_SIZE = 100;

export function pageSize(first: number | null | undefined, fallback = 20): number {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAGE_SIZE) throw badInput(`first must be between 0 and ${MAX_PAGE_SIZE}`, { field: "first" });
  return n;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Opaque keyset cursor: the sort key of the last row of a page, [its sort value, its id]. */
export function encodeCursor(key: [string, string]): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function decodeCursor(cursor: string | null | undefined): [string, string] | undefined {
  if (cursor === null || cursor === undefined) return undefined;
  try {
    const key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    // The id is checked here: a forged one would otherwise fail later, in the query's uuid cast.
    if (Array.isArray(key) && key.length === 2 && typeof key[0] === "string" && typeof key[1] === "string" && UUID.test(key[1])) return key as [string, string];
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
