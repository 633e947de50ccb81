// The baseline of the read benchmark, kept only in the bench: the same GraphQL server (Apollo,
// type-graphql schema and resolvers, HTTP handling, statements through the pg driver like the
// real products query) as the real one, except that products(first, filter) computes its page
// by joining the WRITE tables on every request, as an application without read tables would:
// products ⋈ inventory, units sold summed from the lines of orders that were not cancelled.
import "reflect-metadata";
import { commandSettings, loadConfig } from "../../src/config";
import type { Database } from "../../src/db/database";
import { openPostgres } from "../../src/db/postgres";
import { getSchema } from "../../src/graphql/schema";
import { createHttpApp } from "../../src/http/server";
import { Metrics } from "../../src/http/metrics";
import { createLogger } from "../../src/logger";
import { ChangeFeed } from "../../src/realtime/changeFeed";
import { CatalogQueries, stockLevelSql, type ProductFilter, type ProductRow } from "../../src/query/catalog.queries";
import { ProjectionQueries } from "../../src/query/projections.queries";
import { QueryReads } from "../../src/query/reads";
import { decodeCursor, pageSize, type Page } from "../../src/query/cursor";
import { OrderQueries } from "../../src/query/orders.queries";
import { systemClock, uuid } from "../../src/shared/clock";
import { CommandBus } from "../../src/write/commandBus";

const FILTER = `($1::text IS NULL OR p.name ILIKE $1 OR p.sku ILIKE $1) AND ($2::boolean IS NULL OR (i.available > 0) = $2)`;

/** products(filter, first, after) from the write tables: the page first, then units sold for its rows only. */
class NaiveCatalogQueries extends CatalogQueries {
  constructor(
    private readonly database: Database,
    private readonly lowStockThreshold: number,
  ) {
    super(database, { lowStockThreshold });
  }

  override async list(
    filter: ProductFilter,
    first: number | null | undefined,
    after: string | null | undefined,
  ): Promise<Page<ProductRow>> {
    const take = pageSize(first);
    const cursor = decodeCursor(after);
    const term = filter.search?.trim();
    const search = term ? `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
    const inStock = filter.inStock ?? null;
    const rows = await this.database.sql.query<Omit<ProductRow, "unitsSold"> & { unitsSold: number }>(
      `WITH page AS (
           SELECT p.id, p.sku, p.name, p.description, p.price_cents, p.updated_at, i.available
             FROM "write"."products" p JOIN "write"."inventory" i ON i.product_id = p.id
            WHERE ${FILTER} AND ($3::text IS NULL OR (p.name, p.id) > ($3::text, $4::uuid))
            ORDER BY p.name, p.id
            LIMIT $5::int)
         SELECT page.id::text AS id, page.sku, page.name, page.description, page.price_cents AS "priceCents",
                page.available, page.available > 0 AS "inStock", page.updated_at AS "updatedAt",
                ${stockLevelSql("page.available", this.lowStockThreshold)} AS "stockLevel",
                COALESCE((SELECT sum(l.quantity) FROM "write"."order_lines" l JOIN "write"."orders" o ON o.id = l.order_id
                           WHERE l.product_id = page.id AND o.status <> 'CANCELLED'), 0)::int AS "unitsSold"
           FROM page ORDER BY page.name, page.id`,
      [search, inStock, cursor?.[0] ?? null, cursor?.[1] ?? null, take + 1],
    );
    // counted only when asked for, like the read-table queries
    const count = async () => {
      const [row] = await this.database.sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "write"."products" p JOIN "write"."inventory" i ON i.product_id = p.id WHERE ${FILTER}`,
        [search, inStock],
      );
      return row?.n ?? 0;
    };
    return { rows: rows.slice(0, take), hasNextPage: rows.length > take, count };
  }
}

const config = loadConfig();
const logger = createLogger(config.logLevel);
const db = openPostgres(config.databaseUrl!, config.dbPoolSize);
const catalog = new NaiveCatalogQueries(db, config.lowStockThreshold);
const orders = new OrderQueries(db);
const projections = new ProjectionQueries(db.prisma);
const feed = new ChangeFeed(db, catalog, orders, logger);
const metrics = new Metrics(projections, () => 0);
const http = await createHttpApp({
  schema: await getSchema(),
  services: {
    bus: new CommandBus(db, systemClock, uuid, commandSettings(config), metrics),
    feed,
    catalog,
    orders,
    reads: new QueryReads({ catalog, orders }),
    projections,
    readYourWritesTimeoutMs: 0,
    readModels: [],
  },
  auth: { secret: config.jwtSecret },
  maxQueryDepth: config.maxQueryDepth,
  maxQueryComplexity: config.maxQueryComplexity,
  socketLimits: config.socketLimits,
  logger,
  metrics,
  readiness: async () => null,
});
await http.start(config.port);

const shutdown = () => {
  void http.stop().finally(() => db.close().finally(() => process.exit(0)));
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
