-- write.each for the read side (a read database of its own has no write schema): the items of a
-- list with their places, declared as one row, so that a projection's statement over the few
-- rows of a live batch gets a plan Postgres keeps (see 20261208000000_write_each).
CREATE FUNCTION "read"."each"(items ANYARRAY) RETURNS TABLE (item ANYELEMENT, n INT)
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE ROWS 1 AS $$
BEGIN
  RETURN QUERY SELECT u.item, u.n::int FROM unnest(items) WITH ORDINALITY AS u(item, n);
END $$;
