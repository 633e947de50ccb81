-- Read side. How many products there are, and how many in stock: the totalCount of a catalog
-- page that does not search, without counting every row of read.products per request. The
-- catalog projection keeps it in the same transaction as the rows (src/projection/projections/
-- catalog.projection.ts), so a statement that reads both sees them agree. One row.
CREATE TABLE "read"."catalog_counts" (
    "id" BOOLEAN NOT NULL DEFAULT true,
    "products" INTEGER NOT NULL,
    "in_stock" INTEGER NOT NULL,
    CONSTRAINT "catalog_counts_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "catalog_counts_one_row" CHECK ("id")
);
INSERT INTO "read"."catalog_counts" ("id", "products", "in_stock")
SELECT true, count(*), count(*) FILTER (WHERE "in_stock") FROM "read"."products";
