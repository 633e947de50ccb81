import type { Database } from "../../db/database";
import type { Prisma } from "../../generated/prisma/client";
import { decodeCursor, encodeCursor, pageSize, type Page } from "./cursor";

export interface ProductRow {
  id: string;
  sku: string;
  name: string;
  description: string | null;
  priceCents: number;
  available: number;
  inStock: boolean;
  unitsSold: number;
  updatedAt: Date;
}

export interface ProductFilter {
  search?: string | null;
  inStock?: boolean | null;
}

const SELECT = {
  id: true, sku: true, name: true, description: true, priceCents: true, available: true, inStock: true, unitsSold: true, updatedAt: true,
} as const satisfies Prisma.ProductViewSelect;

export const productCursor = (p: ProductRow) => encodeCursor([p.name, p.id]);

/** The only code that reads read.products. */
export class CatalogQueries {
  constructor(private readonly db: Pick<Database, "prisma">) {}

  byId(id: string): Promise<ProductRow | null> {
    return this.db.prisma.productView.findUnique({ where: { id }, select: SELECT });
  }

  bySku(sku: string): Promise<ProductRow | null> {
    return this.db.prisma.productView.findUnique({ where: { sku }, select: SELECT });
  }

  byIds(ids: string[]): Promise<ProductRow[]> {
    return this.db.prisma.productView.findMany({ where: { id: { in: ids } }, select: SELECT });
  }

  /** Rows changed since a moment (at most `limit`, newest last): to catch subscribers up after an outage. */
  changedSince(since: Date, limit = 1000): Promise<ProductRow[]> {
    return this.db.prisma.productView.findMany({ where: { updatedAt: { gte: since } }, orderBy: { updatedAt: "asc" }, take: limit, select: SELECT });
  }

  /** Sorted by name, then id; keyset pagination. */
  async list(filter: ProductFilter, first: number | null | undefined, after: string | null | undefined): Promise<Page<ProductRow>> {
    const take = pageSize(first);
    const cursor = decodeCursor(after);
    const where: Prisma.ProductViewWhereInput = {};
    const search = filter.search?.trim();
    if (search) {
      where.OR = [{ name: { contains: search, mode: "insensitive" } }, { sku: { contains: search, mode: "insensitive" } }];
    }
    if (filter.inStock !== null && filter.inStock !== undefined) where.inStock = filter.inStock;
    const pageWhere: Prisma.ProductViewWhereInput = cursor
      ? { AND: [where, { OR: [{ name: { gt: cursor[0] } }, { name: cursor[0], id: { gt: cursor[1] } }] }] }
      : where;
    const rows = take === 0 ? [] : await this.db.prisma.productView.findMany({ where: pageWhere, orderBy: [{ name: "asc" }, { id: "asc" }], take: take + 1, select: SELECT });
    return { rows: rows.slice(0, take), hasNextPage: rows.length > take, count: () => this.db.prisma.productView.count({ where }) };
  }
}
