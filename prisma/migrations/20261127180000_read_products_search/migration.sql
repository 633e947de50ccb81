-- products(filter: { search }) is a case-insensitive substring match on the name or the sku
-- (src/read/queries/catalog.queries.ts). Unindexed, that is two ILIKEs on every row of the
-- catalog per request, and ILIKE lower-cases both strings for each row. A trigram index on one
-- expression covering both columns finds the few matching rows; the query spells the expression
-- exactly as here (SEARCH_KEY there), or Postgres does not use the index.
--
-- fastupdate = off: new entries go straight into the index rather than into a pending list
-- that every search must scan until a VACUUM merges it or it reaches gin_pending_list_limit
-- (4 MB): the projector rewrites catalog rows all the time.
--
-- pg_trgm ships with Postgres (contrib) and is a trusted extension. Where it is not installed
-- (PGlite loads it only on request) or may not be created, the search works without the index.
DO $$
DECLARE
  trgm_schema name;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
    RAISE NOTICE 'pg_trgm is not available: products search runs without its index';
    RETURN;
  END IF;
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
  -- Wherever an earlier install put it (not necessarily on the search_path).
  SELECT n.nspname INTO trgm_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
  EXECUTE format(
    'CREATE INDEX "read_products_search_idx" ON "read"."products" USING gin ((lower("name") || E''\n'' || lower("sku")) %I.gin_trgm_ops) WITH (fastupdate = off)',
    trgm_schema);
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'pg_trgm could not be created (%): products search runs without its index', SQLERRM;
END
$$;
