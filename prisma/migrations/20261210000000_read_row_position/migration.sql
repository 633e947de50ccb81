-- A read row's `position` (src/query/rowPosition.ts): the last event applied to it and the row
-- itself, (applied_tx, applied_pos, id), as one decimal that orders rows as that triple does:
--   ((applied_tx * 10^19 + applied_pos + 1) * 10^39 + the id as a 128-bit number)
-- (the id's 32 hex digits read as 15 + 15 + 2: bit(60) casts to bigint whole, bit(64) would come
-- out signed; 2^68 = 295147905179352825856). The id orders the rows one event changed (an
-- order's products), so a subscriber that drops between two of them resumes from the first.
--
-- Computed in every read it cost Postgres about 2 us a row (the numeric arithmetic and the
-- casts), about 4 % of the catalog's read throughput in the bench; stored, a read takes it as it
-- is, and Postgres computes it once per change of the row. It is in no index, so an update can
-- still be heap-only. The test/e2e/resume.e2e test checks that it equals the code's encoder.
--
-- Adding a stored generated column rewrites the table (about a second per 100,000 rows), during
-- which its readers wait.
ALTER TABLE "read"."products"
  ADD COLUMN "row_position" text NOT NULL GENERATED ALWAYS AS (
    (((applied_tx::text)::numeric * 10000000000000000000 + applied_pos + 1) * 1000000000000000000000000000000000000000
      + ('x' || substr(replace(id::text, '-', ''), 1, 15))::bit(60)::bigint::numeric * 295147905179352825856
      + ('x' || substr(replace(id::text, '-', ''), 16, 15))::bit(60)::bigint::numeric * 256
      + ('x' || substr(replace(id::text, '-', ''), 31, 2))::bit(8)::int)::text) STORED;

ALTER TABLE "read"."orders"
  ADD COLUMN "row_position" text NOT NULL GENERATED ALWAYS AS (
    (((applied_tx::text)::numeric * 10000000000000000000 + applied_pos + 1) * 1000000000000000000000000000000000000000
      + ('x' || substr(replace(id::text, '-', ''), 1, 15))::bit(60)::bigint::numeric * 295147905179352825856
      + ('x' || substr(replace(id::text, '-', ''), 16, 15))::bit(60)::bigint::numeric * 256
      + ('x' || substr(replace(id::text, '-', ''), 31, 2))::bit(8)::int)::text) STORED;
