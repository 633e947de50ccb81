import { createHash, randomUUID } from "node:crypto";
import pg from "pg";
import { uuid } from "../../../src/shared/clock";

/**
 * The order transaction a user would write by hand with `pg`: the same rows and the same event as
 * placeOrder (idempotency key, conditional stock reservation, order, line, OrderPlaced — whose
 * insert fires the NOTIFY trigger), with the ids the commands make (time-ordered, so their index
 * inserts cost what placeOrder's do), named prepared statements, one round trip per statement.
 */
export class RawOrderWriter {
  constructor(private readonly client: pg.Client) {}

  static async connect(url: string): Promise<RawOrderWriter> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return new RawOrderWriter(client);
  }

  async placeOrder(customerId: string, idempotencyKey: string, productId: string, quantity: number): Promise<string> {
    const c = this.client;
    const orderId = uuid();
    const hash = createHash("sha256")
      .update(JSON.stringify([{ productId, quantity }]))
      .digest("hex");
    await c.query("BEGIN");
    try {
      const claimed = await c.query({
        name: "raw_claim",
        text: `INSERT INTO "write"."command_keys" (actor_id, command, key, request_hash, created_at) VALUES ($1, 'placeOrder', $2, $3, now()) ON CONFLICT DO NOTHING`,
        values: [customerId, idempotencyKey, hash],
      });
      if (claimed.rowCount !== 1) throw new Error("idempotency key already used");
      const reserved = await c.query<{ sku: string; name: string; price_cents: number }>({
        name: "raw_reserve",
        text: `UPDATE "write"."inventory" i SET available = i.available - $2, reserved = i.reserved + $2
                 FROM "write"."products" p
                WHERE i.product_id = $1 AND i.available >= $2 AND p.id = i.product_id
            RETURNING p.sku, p.name, p.price_cents`,
        values: [productId, quantity],
      });
      const product = reserved.rows[0];
      if (!product) throw new Error("out of stock");
      const now = new Date();
      const total = product.price_cents * quantity;
      await c.query({
        name: "raw_order",
        text: `INSERT INTO "write"."orders" (id, customer_id, status, total_cents, item_count, version, placed_at, updated_at) VALUES ($1, $2, 'PLACED', $3, $4, 1, $5, $5)`,
        values: [orderId, customerId, total, quantity, now],
      });
      await c.query({
        name: "raw_line",
        text: `INSERT INTO "write"."order_lines" (order_id, line_no, product_id, quantity, unit_price_cents) VALUES ($1, 1, $2, $3, $4)`,
        values: [orderId, productId, quantity, product.price_cents],
      });
      const data = {
        orderId,
        customerId,
        lines: [{ productId, sku: product.sku, name: product.name, quantity, unitPriceCents: product.price_cents }],
        totalCents: total,
        itemCount: quantity,
        placedAt: now.toISOString(),
      };
      const metadata = {
        correlationId: randomUUID(),
        causationId: null,
        actor: { id: customerId, role: "customer" },
        command: "placeOrder",
      };
      await c.query({
        name: "raw_event",
        text: `INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at) VALUES ($1, 'order', 1, 'OrderPlaced', $2, $3, $4)`,
        values: [orderId, JSON.stringify(data), JSON.stringify(metadata), now],
      });
      await c.query("COMMIT");
      return orderId;
    } catch (error) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  }

  close(): Promise<void> {
    return this.client.end();
  }
}
