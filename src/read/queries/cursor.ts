import { badInput } from "../../shared/errors";

export const MAX_PAGE_SIZE = 100;

export function pageSize(first: number | null | undefined, fallback = 20): number {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAGE_SIZE) throw badInput(`first must be between 0 and ${MAX_PAGE_SIZE}`, { field: "first" });
  return n;
}

/** Opaque keyset cursor: the sort key of the last row of a page. */
export function encodeCursor(key: [string, string]): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function decodeCursor(cursor: string | null | undefined): [string, string] | undefined {
  if (cursor === null || cursor === undefined) return undefined;
  try {
    const key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(key) && key.length === 2 && key.every((k) => typeof k === "string")) return key as [string, string];
  } catch {
    // fall through
  }
  throw badInput("after is not a cursor returned by this API", { field: "after" });
}

export interface Page<T> {
  rows: T[];
  hasNextPage: boolean;
  /** Rows matching the filter over all pages; counted only if asked for. */
  count(): Promise<number>;
}
