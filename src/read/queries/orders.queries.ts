import type { Database } from "../../db/database";
import type { Prisma } from "../../generated/prisma/client";
import { badInput } from "../../shared/errors";
import { decodeCursor, encodeCursor, pageSize, type Page } from "./cursor";

export type OrderStatusValue = "PLACED" | "PAID" | "SHIPPED" | "CANCELLED";

export interface OrderLineRow {
  productId: string;
  sku: string;
  name: string;
  quantity: number;
  unitPriceCents: number;
}

export interface OrderRow {
  id: string;
  customerId: string;
  status: OrderStatusValue;
  totalCents: number;
  itemCount: number;
  lines: OrderLineRow[];
  placedAt: Date;
  updatedAt: Date;
}

const SELECT = {
  id: true, customerId: true, status: true, totalCents: true, itemCount: true, lines: true, placedAt: true, updatedAt: true,
} as const satisfies Prisma.OrderViewSelect;

type Selected = Prisma.OrderViewGetPayload<{ select: typeof SELECT }>;
const toRow = (o: Selected): OrderRow => ({ ...o, status: o.status as OrderStatusValue, lines: o.lines as unknown as OrderLineRow[] });

/** The same columns as SELECT, for statements through the driver. */
const COLUMNS = `id::text AS id, customer_id AS "customerId", status, total_cents AS "totalCents", item_count AS "itemCount", lines, placed_at AS "placedAt", updated_at AS "updatedAt"`;

export const orderCursor = (o: OrderRow) => encodeCursor([o.placedAt.toISOString(), o.id]);

/** The only code that reads read.orders. Newest first. */
export class OrderQueries {
  constructor(private readonly db: Pick<Database, "prisma" | "sql">) {}

  // byId and byIds serve every mutation's answer and every subscription push: through the driver.
  async byId(id: string): Promise<OrderRow | null> {
    const [row] = await this.db.sql.query<OrderRow>(`SELECT ${COLUMNS} FROM "read"."orders" WHERE id = $1::uuid`, [id]);
    return row ?? null;
  }

  byIds(ids: string[]): Promise<OrderRow[]> {
    return this.db.sql.query<OrderRow>(`SELECT ${COLUMNS} FROM "read"."orders" WHERE id = ANY($1::uuid[])`, [ids]);
  }

  list(filter: { customerId?: string; status?: OrderStatusValue | null }, first: number | null | undefined, after: string | null | undefined): Promise<Page<OrderRow>> {
    const where: Prisma.OrderViewWhereInput = {};
    if (filter.customerId !== undefined) where.customerId = filter.customerId;
    if (filter.status) where.status = filter.status;
    return this.page(where, first, after);
  }

  private async page(where: Prisma.OrderViewWhereInput, first: number | null | undefined, after: string | null | undefined): Promise<Page<OrderRow>> {
    const take = pageSize(first);
    const cursor = decodeCursor(after);
    let pageWhere = where;
    if (cursor) {
      const placedAt = new Date(cursor[0]);
      if (Number.isNaN(placedAt.getTime())) throw badInput("after is not a cursor returned by this API", { field: "after" });
      pageWhere = { AND: [where, { OR: [{ placedAt: { lt: placedAt } }, { placedAt, id: { lt: cursor[1] } }] }] };
    }
    const rows = take === 0 ? [] : await this.db.prisma.orderView.findMany({ where: pageWhere, orderBy: [{ placedAt: "desc" }, { id: "desc" }], take: take + 1, select: SELECT });
    return { rows: rows.slice(0, take).map(toRow), hasNextPage: rows.length > take, count: () => this.db.prisma.orderView.count({ where }) };
  }
}
