-- A read row's `position` (src/query/rowPosition.ts) names the last event applied to it and the
-- row itself, (applied_tx, applied_pos, id), as one decimal:
--   ((applied_tx * 10^19 + applied_pos + 1) * 10^39 + the id as a 128-bit number)
-- The id orders the rows one event changed (an order's products), so a subscriber that drops
-- between two of them resumes from the first and gets the second.
--
-- The id as a number is most of that arithmetic's cost (about 2 us a row: its 32 hex digits
-- read as 15 + 15 + 2, since bit(60) casts to bigint whole and bit(64) would come out signed;
-- 2^68 = 295147905179352825856), so it is stored, row_key, written once with the row by the
-- projection that inserts it: a page read then costs what it did before (computed in the read,
-- a page of 20 cost Postgres about 35 % more). A stored generated column would need no writer,
-- but with one every UPDATE of the table cost about 40 us more, and a few us more per row, and
-- every stock move and order status is one (both measured with pgbench).
CREATE FUNCTION "read"."row_key"(id uuid) RETURNS numeric
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN ('x' || substr(replace(id::text, '-', ''), 1, 15))::bit(60)::bigint::numeric * 295147905179352825856
       + ('x' || substr(replace(id::text, '-', ''), 16, 15))::bit(60)::bigint::numeric * 256
       + ('x' || substr(replace(id::text, '-', ''), 31, 2))::bit(8)::int;

-- Existing rows: each rewritten once (about a second per 100,000 rows), while their readers wait.
ALTER TABLE "read"."products" ADD COLUMN "row_key" numeric(39, 0);
UPDATE "read"."products" SET "row_key" = "read"."row_key"("id");
ALTER TABLE "read"."products" ALTER COLUMN "row_key" SET NOT NULL;

ALTER TABLE "read"."orders" ADD COLUMN "row_key" numeric(39, 0);
UPDATE "read"."orders" SET "row_key" = "read"."row_key"("id");
ALTER TABLE "read"."orders" ALTER COLUMN "row_key" SET NOT NULL;

-- A version before this one, still running during a rolling deploy, inserts rows without it:
-- Postgres fills it then. (This version writes it itself; the WHEN skips the call.)
CREATE FUNCTION "read"."fill_row_key"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.row_key := "read"."row_key"(NEW.id);
  RETURN NEW;
END
$$;

CREATE TRIGGER "products_fill_row_key" BEFORE INSERT ON "read"."products"
  FOR EACH ROW WHEN (NEW.row_key IS NULL) EXECUTE FUNCTION "read"."fill_row_key"();

CREATE TRIGGER "orders_fill_row_key" BEFORE INSERT ON "read"."orders"
  FOR EACH ROW WHEN (NEW.row_key IS NULL) EXECUTE FUNCTION "read"."fill_row_key"();
