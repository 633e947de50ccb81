import type { OrderView } from "../generated/prisma/client";
import type { CancellationReason, OrderStatus, PlacedLine } from "../events";
import type { Database } from "../db/database";
import { sql, type Fragment } from "../db/sql";
import { batchById } from "./batchById";
import { rowPositionSql } from "./rowPosition";
import { badInput } from "../shared/errors";
import { countMatching, decodeCursor, encodeCursor, fetchPage, pageSize, type ListOptions, type Page } from "./cursor";

/** An order row as the API serves it: the Prisma model of read.orders, its JSON and status typed. */
export type OrderRow = Pick<
  OrderView,
  "id" | "customerId" | "totalCents" | "itemCount" | "placedAt" | "updatedAt" | "expiresAt"
> & {
  status: OrderStatus;
  /** The lines as placed (the OrderPlaced event's). */
  lines: PlacedLine[];
  cancellationReason: CancellationReason | null;
  /** The last event applied to the row (see rowPosition.ts). */
  position: string;
};

/** An OrderRow's columns, for statements through the driver (jsonb comes back parsed). */
const COLUMNS = `id::text AS id, customer_id AS "customerId", status, total_cents AS "totalCents", item_count AS "itemCount", lines, placed_at AS "placedAt", updated_at AS "updatedAt",
  expires_at AS "expiresAt", cancellation_reason AS "cancellationReason", ${rowPositionSql()} AS position`;

export const orderCursor = (o: OrderRow) => encodeCursor([o.placedAt.toISOString(), o.id]);

/** The only code that reads read.orders. Newest first. */
export class OrderQueries {
  constructor(private readonly db: Pick<Database, "sql">) {}

  // byId and byIds serve every mutation's answer and every subscription push: through the driver,
  // and the by-id reads of one turn of the event loop in one statement (see batchById).
  readonly byId: (id: string) => Promise<OrderRow | null> = batchById((ids) => this.byIds(ids));

  byIds(ids: string[]): Promise<OrderRow[]> {
    return this.db.sql.query<OrderRow>(`SELECT ${COLUMNS} FROM "read"."orders" WHERE id = ANY($1::uuid[])`, [ids]);
  }

  /**
   * Newest first; keyset pagination. One statement, through the driver, for the page and, when
   * options.count says it will be asked for, the number of orders matching the filter (the CTE
   * is inlined into both: each is a range of one of the (…, placed_at, id) indexes).
   */
  async list(
    filter: { customerId?: string; status?: OrderStatus | null },
    first: number | null | undefined,
    after: string | null | undefined,
    options: ListOptions = {},
  ): Promise<Page<OrderRow>> {
    const take = pageSize(first);
    const cursor = decodeCursor(after);
    const placedAt = cursor && new Date(cursor[0]);
    if (placedAt && Number.isNaN(placedAt.getTime()))
      throw badInput("after is not a cursor returned by this API", { field: "after" });

    const conditions: Fragment[] = [];
    if (filter.customerId !== undefined) conditions.push(sql.fragment`customer_id = ${filter.customerId}`);
    if (filter.status) conditions.push(sql.fragment`status = ${filter.status}`);
    const where = sql.where(conditions);
    const matching = sql.fragment`SELECT * FROM "read"."orders" ${where}`;
    const count = countMatching(this.db.sql, matching);
    if (take === 0 && !options.count) return { rows: [], hasNextPage: false, count };

    const keyset = placedAt
      ? sql.fragment`WHERE (placed_at, id) < (${placedAt}::timestamptz, ${cursor[1]}::uuid)`
      : sql.fragment``;
    // take + 1 rows tell whether there is a next page; first: 0 asks for none (and no next page).
    const limit = take === 0 ? 0 : take + 1;
    return fetchPage<OrderRow>(
      this.db.sql,
      {
        matching,
        materialized: false,
        page: (matches) =>
          sql.fragment`SELECT * FROM ${matches} ${keyset} ORDER BY placed_at DESC, id DESC LIMIT ${limit}`,
        columns: PAGE_COLUMNS,
        orderBy: PAGE_ORDER,
        count,
      },
      take,
      options.count === true,
    );
  }
}

const PAGE_COLUMNS = sql.trusted(COLUMNS);
const PAGE_ORDER = sql.fragment`p.placed_at DESC, p.id DESC`;
