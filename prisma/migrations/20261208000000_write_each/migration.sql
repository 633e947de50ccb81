-- The items of a list, each with its place (from 1), for the write model's statements that take a
-- list as one array parameter, so that their text, and so their prepared statement, stays the
-- same whatever the list's length. Postgres plans such a statement either for the values at
-- hand (a custom plan) or once for any value (a generic plan, reused). unnest() of a parameter
-- counts as 10 rows in a generic plan, and at that count a hash join over a full scan of a small
-- table costs less than ten index lookups: the generic plan was worse, so Postgres planned
-- placeOrder's stock load and its stock update anew at every call (measured under order load:
-- 0.10-0.14 ms of planning each, more than executing them). Declared as one row (a cart holds a
-- few lines), every plan is index lookups, the same for any list, and after five calls Postgres
-- keeps the generic one. Not inlined (PL/pgSQL), so the declared count is what the planner sees.
CREATE FUNCTION "write"."each"(items ANYARRAY) RETURNS TABLE (item ANYELEMENT, n INT)
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE ROWS 1 AS $$
BEGIN
  RETURN QUERY SELECT u.item, u.n::int FROM unnest(items) WITH ORDINALITY AS u(item, n);
END $$;
