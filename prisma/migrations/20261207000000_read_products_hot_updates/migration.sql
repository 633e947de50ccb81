-- Every stock move updates its product's row, and every update changes (applied_tx,
-- applied_pos): with an index on them, no update could be heap-only (HOT), so each wrote an
-- entry into all six indexes of the table, the trigram index included, and left a dead version
-- behind (measured: 585,368 dead versions for 2,000 products after 10⁶ events without vacuum).
-- Without it, an update that leaves name, sku and in_stock alone can stay on its page. The one
-- reader of that order, a subscription to every product resumed with `after` (rare), reads the
-- table instead; resumes of given products go by id.
DROP INDEX "read"."read_products_applied_idx";
