import type { ProductView } from "../generated/prisma/client";
import type { Database, Sql } from "../db/database";
import { sql, type Fragment, type Identifier } from "../db/sql";
import { batchById } from "./batchById";
import { idOf, rowPositionSql, type RowPosition } from "./rowPosition";
import { countMatching, decodeCursor, encodeCursor, fetchPage, pageSize, type ListOptions, type Page } from "./cursor";

/** A catalog row as the API serves it: the Prisma model of read.products, less its bookkeeping columns. */
export type ProductRow = Pick<
  ProductView,
  "id" | "sku" | "name" | "description" | "priceCents" | "available" | "inStock" | "unitsSold" | "updatedAt"
> & {
  stockLevel: StockLevel;
  /** The last event applied to the row (see rowPosition.ts). */
  position: string;
};

export const STOCK_LEVELS = ["IN_STOCK", "LOW_STOCK", "OUT_OF_STOCK"] as const;
export type StockLevel = (typeof STOCK_LEVELS)[number];
/** LOW_STOCK_THRESHOLD's default. */
export const DEFAULT_LOW_STOCK_THRESHOLD = 5;

export interface ProductFilter {
  search?: string | null;
  inStock?: boolean | null;
}

/** The SQL expression of a row's StockLevel, from its available units. */
export const stockLevelSql = (available: string, lowStockThreshold: number) =>
  `CASE WHEN ${available} <= 0 THEN 'OUT_OF_STOCK' WHEN ${available} <= ${lowStockThreshold} THEN 'LOW_STOCK' ELSE 'IN_STOCK' END`;

/** The columns of a ProductRow, as the driver reads them (uuid as its text); the stock level as the threshold makes it. */
const columnsOf = (lowStockThreshold: number) =>
  `id, sku, name, description, price_cents AS "priceCents", available, in_stock AS "inStock", units_sold AS "unitsSold", updated_at AS "updatedAt",
   ${stockLevelSql("available", lowStockThreshold)} AS "stockLevel",
   ${rowPositionSql()} AS position`;

/** Rows replayed to a subscriber resuming from a position, at most (more: re-query instead). */
export const MAX_REPLAY = 1000;

/**
 * What a search matches: `lower(name) || E'\\n' || lower(sku)`, stored with each row (a generated
 * column, migration 20261209000000_read_products_search_key) under the trigram index
 * read_products_search_idx, so that a search does not compute it for every candidate row.
 */
export const SEARCH_KEY = "search_key";
const SEARCH_KEY_SQL = sql.trusted(SEARCH_KEY);

/** `%term%` for LIKE/ILIKE, with the term's own wildcards (and the escape character) taken literally. */
export const containsPattern = (term: string) => `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export const productCursor = (p: ProductRow) => encodeCursor([p.name, p.id]);

/** The only code that reads read.products. */
export class CatalogQueries {
  /** The statements' column list: fixed per instance, so each statement is still prepared once per connection. */
  private readonly columns: string;
  private readonly columnList: Fragment;

  constructor(
    private readonly db: Pick<Database, "sql">,
    { lowStockThreshold = DEFAULT_LOW_STOCK_THRESHOLD }: { lowStockThreshold?: number } = {},
  ) {
    if (!Number.isInteger(lowStockThreshold) || lowStockThreshold < 0)
      throw new Error(`lowStockThreshold must be an integer >= 0, got ${lowStockThreshold}`);
    this.columns = columnsOf(lowStockThreshold);
    this.columnList = sql.trusted(this.columns);
  }

  // Through the driver like list(): these serve every mutation's answer and every push, and the
  // by-id reads of one turn of the event loop go in one statement (see batchById).
  readonly byId: (id: string) => Promise<ProductRow | null> = batchById((ids) => this.byIds(ids));

  async bySku(sku: string): Promise<ProductRow | null> {
    const [row] = await this.db.sql.query<ProductRow>(`SELECT ${this.columns} FROM "read"."products" WHERE sku = $1`, [
      sku,
    ]);
    return row ?? null;
  }

  byIds(ids: string[]): Promise<ProductRow[]> {
    return this.db.sql.query<ProductRow>(`SELECT ${this.columns} FROM "read"."products" WHERE id = ANY($1::uuid[])`, [
      ids,
    ]);
  }

  /**
   * The rows (of `ids`, or all) that come after `after` in the log's reading order (their last
   * applied event, then their id), in that order: what a subscriber resuming from `after`
   * missed. At most limit rows: the first ones, or with `latest` the last ones (still in that order).
   */
  async changedAfter(
    ids: string[] | undefined,
    after: RowPosition,
    limit = MAX_REPLAY + 1,
    latest = false,
  ): Promise<ProductRow[]> {
    const order = latest ? " DESC" : "";
    const rows = await this.db.sql.query<ProductRow>(
      `SELECT ${this.columns} FROM "read"."products"
        WHERE (applied_tx, applied_pos, id) > ($1::text::xid8, $2::bigint, $3::uuid) AND ($4::uuid[] IS NULL OR id = ANY($4::uuid[]))
        ORDER BY applied_tx${order}, applied_pos${order}, id${order} LIMIT $5::int`,
      [after.txId.toString(), after.position.toString(), idOf(after), ids ?? null, limit],
    );
    return latest ? rows.reverse() : rows;
  }

  /**
   * Sorted by name, then id; keyset pagination. search: case-insensitive substring of the name
   * or the sku. One statement, through the driver (the hot read path), for the page and, when
   * options.count says it will be asked for, the number of rows matching the filter (on every
   * page, not only after the cursor). Statement texts come from a small fixed set (which
   * conditions are present), so each is prepared once per connection.
   */
  async list(
    filter: ProductFilter,
    first: number | null | undefined,
    after: string | null | undefined,
    options: ListOptions = {},
  ): Promise<Page<ProductRow>> {
    const take = pageSize(first);
    const cursor = decodeCursor(after);

    const search = filter.search?.trim();
    const conditions: Fragment[] = [];
    if (search) conditions.push(searchCondition(search));
    if (filter.inStock !== null && filter.inStock !== undefined)
      conditions.push(sql.fragment`in_stock = ${filter.inStock}`);
    const where = sql.where(conditions);
    const keyset = cursor ? sql.fragment`WHERE (name, id) > (${cursor[0]}, ${cursor[1]}::uuid)` : sql.fragment``;
    // take + 1 rows tell whether there is a next page; first: 0 asks for none (and no next page).
    const limit = take === 0 ? 0 : take + 1;
    // Searching, the matches are found once (through the trigram index) and serve both the count
    // and the page: only their ids and names, the page's columns are read for its own rows. Left
    // to itself, Postgres, which costs lower() like an addition, would rather walk the
    // (in_stock, name) index and lower-case row after row until the page is full. Not searching,
    // the matches are read inline in each use: the page reads `first` rows of that index and stops.
    const query = search
      ? {
          matching: sql.fragment`SELECT id, name FROM "read"."products" ${where}`,
          materialized: true,
          page: (matches: Identifier) => sql.fragment`SELECT ${this.columnList} FROM "read"."products"
            WHERE id IN (SELECT id FROM ${matches} ${keyset} ORDER BY name, id LIMIT ${limit})`,
        }
      : {
          matching: sql.fragment`SELECT ${this.columnList} FROM "read"."products" ${where}`,
          materialized: false,
          page: (matches: Identifier) =>
            sql.fragment`SELECT * FROM ${matches} ${keyset} ORDER BY name, id LIMIT ${limit}`,
        };
    // Not searching, the count is the one the projection keeps with the rows (exact, in the same snapshot).
    const kept = search ? undefined : keptCount(filter.inStock);
    const count = kept ? countKept(this.db.sql, kept) : countMatching(this.db.sql, query.matching);
    if (take === 0 && !options.count) return { rows: [], hasNextPage: false, count };

    return fetchPage<ProductRow>(
      this.db.sql,
      { ...query, columns: PAGE_COLUMNS, orderBy: PAGE_ORDER, count, total: kept },
      take,
      options.count === true,
    );
  }
}

/** A page's rows come with their columns: all of them, in the catalog's order. */
const PAGE_COLUMNS = sql.fragment`p.*`;
const PAGE_ORDER = sql.fragment`p.name, p.id`;

/**
 * `name ILIKE p OR sku ILIKE p` for p = %term%. Postgres runs `x ILIKE p` as
 * `lower(x) LIKE lower(p)`, so when the term has no line break, that is exactly a LIKE on
 * SEARCH_KEY: a match cannot span the line break between the two (lower() makes none). That
 * form is what the trigram index serves; a term with a line break gets the ILIKEs themselves.
 */
function searchCondition(term: string): Fragment {
  const pattern = containsPattern(term);
  return term.includes("\n")
    ? sql.fragment`(name ILIKE ${pattern} OR sku ILIKE ${pattern})`
    : sql.fragment`(${SEARCH_KEY_SQL}) LIKE lower(${pattern})`;
}

/** The count of products matching an inStock filter, over read.catalog_counts (its only row). */
function keptCount(inStock: boolean | null | undefined): Fragment {
  const column = sql.trusted(inStock === true ? "in_stock" : inStock === false ? "products - in_stock" : "products");
  return sql.fragment`SELECT COALESCE((SELECT ${column} FROM "read"."catalog_counts"), 0)::int AS total`;
}

function countKept(db: Sql, kept: Fragment): () => Promise<number> {
  return async () => {
    const [row] = await db.query<{ total: number }>(kept);
    return row?.total ?? 0;
  };
}
