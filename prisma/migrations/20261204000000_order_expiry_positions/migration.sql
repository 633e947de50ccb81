-- Write side. An order's payment deadline, set when it is placed and cleared when it leaves
-- PLACED: the schedule of the order expiry (src/process/orderExpiry.ts), written in the same
-- transaction as the events that set and clear it. Orders placed before this migration have
-- none (their events set none), so they do not expire.
ALTER TABLE "write"."orders" ADD COLUMN "expires_at" TIMESTAMPTZ(3);
CREATE INDEX "orders_payment_deadline_idx" ON "write"."orders"("expires_at") WHERE "status" = 'PLACED' AND "expires_at" IS NOT NULL;

-- Read side. The order's deadline and why it was cancelled, and on both tables the last event
-- applied to the row (transaction id and position: the row's `position` cursor). Rows projected
-- before this migration start at (0, 0), before every event: a resumed subscription replays
-- them rather than skip them, until a rebuild gives them their own.
ALTER TABLE "read"."orders" ADD COLUMN "expires_at" TIMESTAMPTZ(3);
ALTER TABLE "read"."orders" ADD COLUMN "cancellation_reason" TEXT;
ALTER TABLE "read"."orders" ADD COLUMN "applied_tx" XID8 NOT NULL DEFAULT '0';
ALTER TABLE "read"."orders" ADD COLUMN "applied_pos" BIGINT NOT NULL DEFAULT 0;
CREATE INDEX "read_products_applied_idx" ON "read"."products"("applied_tx", "applied_pos");
