-- Write model, event log and read model. Kept in step with prisma/schema.prisma
-- (test/integration/schema-drift.test.ts). Applied by src/db/migrate.ts.

CREATE SCHEMA IF NOT EXISTS "write";
CREATE SCHEMA IF NOT EXISTS "read";

-- ---------- write side ----------

CREATE TABLE "write"."products" (
  "id"          UUID PRIMARY KEY,
  "sku"         TEXT NOT NULL UNIQUE,
  "name"        TEXT NOT NULL,
  "description" TEXT,
  "price_cents" INTEGER NOT NULL CHECK ("price_cents" >= 0),
  "version"     INTEGER NOT NULL,
  "created_at"  TIMESTAMPTZ(3) NOT NULL,
  "updated_at"  TIMESTAMPTZ(3) NOT NULL
);

-- available = on_hand - reserved always; none of them can go negative, whatever the code does.
CREATE TABLE "write"."inventory" (
  "product_id" UUID PRIMARY KEY REFERENCES "write"."products"("id"),
  "on_hand"    INTEGER NOT NULL CHECK ("on_hand" >= 0),
  "reserved"   INTEGER NOT NULL CHECK ("reserved" >= 0),
  "available"  INTEGER NOT NULL CHECK ("available" >= 0),
  CONSTRAINT "inventory_balance" CHECK ("available" = "on_hand" - "reserved")
);

CREATE TABLE "write"."orders" (
  "id"          UUID PRIMARY KEY,
  "customer_id" TEXT NOT NULL,
  "status"      TEXT NOT NULL CHECK ("status" IN ('PLACED', 'PAID', 'SHIPPED', 'CANCELLED')),
  "total_cents" INTEGER NOT NULL,
  "item_count"  INTEGER NOT NULL,
  "version"     INTEGER NOT NULL,
  "placed_at"   TIMESTAMPTZ(3) NOT NULL,
  "updated_at"  TIMESTAMPTZ(3) NOT NULL
);
CREATE INDEX "orders_customer_id_idx" ON "write"."orders"("customer_id");

CREATE TABLE "write"."order_lines" (
  "order_id"         UUID NOT NULL REFERENCES "write"."orders"("id"),
  "line_no"          INTEGER NOT NULL,
  "product_id"       UUID NOT NULL REFERENCES "write"."products"("id"),
  "quantity"         INTEGER NOT NULL CHECK ("quantity" > 0),
  "unit_price_cents" INTEGER NOT NULL,
  PRIMARY KEY ("order_id", "line_no")
);

-- One row per (customer, client key): the unique key is what makes concurrent retries safe.
CREATE TABLE "write"."idempotency_keys" (
  "customer_id"  TEXT NOT NULL,
  "key"          TEXT NOT NULL,
  "request_hash" TEXT NOT NULL,
  "order_id"     UUID NOT NULL,
  "created_at"   TIMESTAMPTZ(3) NOT NULL,
  PRIMARY KEY ("customer_id", "key")
);

-- ---------- event log (outbox) ----------

CREATE TABLE "write"."events" (
  "position"       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  "tx_id"          XID8 NOT NULL DEFAULT pg_current_xact_id(),
  "stream_id"      UUID NOT NULL,
  "stream_type"    TEXT NOT NULL,
  "stream_version" INTEGER NOT NULL,
  "type"           TEXT NOT NULL,
  "data"           JSONB NOT NULL,
  "metadata"       JSONB NOT NULL,
  "occurred_at"    TIMESTAMPTZ(3) NOT NULL,
  CONSTRAINT "events_stream_id_stream_version_key" UNIQUE ("stream_id", "stream_version")
);
-- The projector reads in (tx_id, position) order; see src/eventLog/eventLog.ts.
CREATE INDEX "events_tx_id_position_idx" ON "write"."events"("tx_id", "position");

-- Wake the projector when events commit (NOTIFY is delivered only on commit, once per tx).
CREATE FUNCTION "write"."notify_events_appended"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('events_appended', '');
  RETURN NULL;
END $$;
CREATE TRIGGER "events_appended" AFTER INSERT ON "write"."events"
  FOR EACH STATEMENT EXECUTE FUNCTION "write"."notify_events_appended"();

-- Events are facts: never rewritten.
CREATE FUNCTION "write"."events_are_immutable"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'write.events is append-only';
END $$;
CREATE TRIGGER "events_immutable" BEFORE UPDATE OR DELETE ON "write"."events"
  FOR EACH ROW EXECUTE FUNCTION "write"."events_are_immutable"();

-- ---------- read side ----------

CREATE TABLE "read"."products" (
  "id"          UUID PRIMARY KEY,
  "sku"         TEXT NOT NULL UNIQUE,
  "name"        TEXT NOT NULL,
  "description" TEXT,
  "price_cents" INTEGER NOT NULL,
  "available"   INTEGER NOT NULL,
  "in_stock"    BOOLEAN NOT NULL,
  "units_sold"  INTEGER NOT NULL,
  "created_at"  TIMESTAMPTZ(3) NOT NULL,
  "updated_at"  TIMESTAMPTZ(3) NOT NULL,
  -- (tx_id, position) of the last event applied to this row: a replayed event changes nothing.
  "applied_tx"  XID8 NOT NULL,
  "applied_pos" BIGINT NOT NULL
);
CREATE INDEX "read_products_name_idx" ON "read"."products"("name", "id");
CREATE INDEX "read_products_in_stock_name_idx" ON "read"."products"("in_stock", "name", "id");

CREATE TABLE "read"."orders" (
  "id"          UUID PRIMARY KEY,
  "customer_id" TEXT NOT NULL,
  "status"      TEXT NOT NULL,
  "total_cents" INTEGER NOT NULL,
  "item_count"  INTEGER NOT NULL,
  "lines"       JSONB NOT NULL,
  "placed_at"   TIMESTAMPTZ(3) NOT NULL,
  "updated_at"  TIMESTAMPTZ(3) NOT NULL,
  -- stream version of the last applied event of this order
  "version"     INTEGER NOT NULL
);
-- The per-customer order list and the admin lists are index ranges of this one table.
CREATE INDEX "read_orders_customer_idx" ON "read"."orders"("customer_id", "placed_at" DESC, "id" DESC);
CREATE INDEX "read_orders_status_idx" ON "read"."orders"("status", "placed_at" DESC, "id" DESC);
CREATE INDEX "read_orders_placed_idx" ON "read"."orders"("placed_at" DESC, "id" DESC);

CREATE TABLE "read"."projection_checkpoints" (
  "name"            TEXT PRIMARY KEY,
  "tx_id"           XID8 NOT NULL DEFAULT '0',
  "position"        BIGINT NOT NULL DEFAULT 0,
  "status"          TEXT NOT NULL DEFAULT 'RUNNING',
  "last_error"      TEXT,
  "failed_position" BIGINT,
  "updated_at"      TIMESTAMPTZ(3) NOT NULL DEFAULT now()
);
