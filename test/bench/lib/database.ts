import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";

// SQL the bench needs to stage data fast. It writes exactly the rows and events the real
// commands write (see src/write/*/commands/*.ts and src/events/), so the projector treats them
// like any others.

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export interface BenchDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

function urlFor(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin(sql: string, params: unknown[] = []): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/** An empty database of its own (the server applies the migrations when it starts), or what `create` makes under its name. */
export async function createBenchDatabase(
  create: (name: string) => Promise<void> = (name) => admin(`CREATE DATABASE "${name}"`),
): Promise<BenchDatabase> {
  const name = `shop_bench_${randomBytes(5).toString("hex")}`;
  await create(name);
  const url = urlFor(name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on("error", () => undefined);
  let dropped = false;
  return {
    name,
    url,
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end().catch(() => undefined);
      await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/**
 * A copy of a bench database as it is now (CREATE DATABASE … TEMPLATE: a copy of its files). The
 * source's sessions are ended first, as the copy requires; its pool opens new ones when next used.
 */
export async function copyBenchDatabase(source: BenchDatabase): Promise<BenchDatabase> {
  return createBenchDatabase(async (name) => {
    await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [source.name]);
    await admin(`CREATE DATABASE "${name}" TEMPLATE "${source.name}"`);
  });
}

/** Databases of earlier runs that were killed before their cleanup; one still in use (connected) is left alone. */
export async function dropStaleBenchDatabases(): Promise<string[]> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  const dropped: string[] = [];
  try {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT d.datname FROM pg_database d WHERE d.datname LIKE 'shop\\_bench\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)`,
    );
    for (const { datname } of rows) {
      try {
        await client.query(`DROP DATABASE "${datname}"`);
        dropped.push(datname);
      } catch {
        // someone connected meanwhile: theirs
      }
    }
  } finally {
    await client.end();
  }
  return dropped;
}

/** Runs fn in one transaction on a dedicated client. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

const ADJECTIVES = [
  "Red",
  "Blue",
  "Green",
  "Black",
  "White",
  "Silver",
  "Golden",
  "Vintage",
  "Compact",
  "Deluxe",
  "Rugged",
  "Classic",
  "Smart",
  "Mini",
  "Ultra",
  "Eco",
];
const NOUNS = [
  "Widget",
  "Gadget",
  "Lamp",
  "Chair",
  "Mug",
  "Backpack",
  "Kettle",
  "Speaker",
  "Notebook",
  "Bottle",
  "Jacket",
  "Helmet",
  "Drone",
  "Clock",
  "Pillow",
  "Blender",
];
/** Search terms of the read benchmark: each matches about 1/16 of the catalog. */
export const SEARCH_TERMS = [...ADJECTIVES.map((a) => a.toLowerCase()), ...NOUNS.map((n) => n.toLowerCase())];

export const BENCH_STOCK = 1_000_000_000;

const metadata = (command: string, role: "admin" | "customer", actor: string) =>
  JSON.stringify({ correlationId: "bench-seed", causationId: null, actor: { id: actor, role }, command });

/** ISO-8601 in UTC with milliseconds, as the commands write placedAt. */
const ISO_NOW = `to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * n products as createProduct makes them (product row v1, inventory, ProductCreated v1), numbered
 * from `from` (to grow a catalog in steps). Every
 * tenth has no stock (so inStock filters something); the rest have a billion units, so stock is
 * never what limits the write benchmark.
 */
export async function seedProducts(pool: pg.Pool, n: number, from = 0): Promise<void> {
  await inTransaction(pool, async (c) => {
    await c.query(
      `CREATE TEMP TABLE seed_products ON COMMIT DROP AS
       SELECT gen_random_uuid() AS id, 'BENCH-' || lpad(g::text, 6, '0') AS sku,
              ($2::text[])[1 + g % 16] || ' ' || ($3::text[])[1 + (g / 16) % 16] || ' ' || g AS name,
              'Bench product ' || g AS description,
              100 + (g * 37) % 10000 AS price_cents,
              CASE WHEN g % 10 = 9 THEN 0 ELSE ${BENCH_STOCK} END AS stock, g
         FROM generate_series($4::int, $4::int + $1::int - 1) AS g`,
      [n, ADJECTIVES, NOUNS, from],
    );
    await c.query(`INSERT INTO "write"."products" (id, sku, name, description, price_cents, version, created_at, updated_at)
                   SELECT id, sku, name, description, price_cents, 1, now(), now() FROM seed_products`);
    await c.query(
      `INSERT INTO "write"."inventory" (product_id, on_hand, reserved, available) SELECT id, stock, 0, stock FROM seed_products`,
    );
    await c.query(
      `INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
       SELECT id, 'product', 1, 'ProductCreated',
              jsonb_build_object('productId', id, 'sku', sku, 'name', name, 'description', description, 'priceCents', price_cents, 'initialStock', stock),
              $1::jsonb, now()
         FROM seed_products ORDER BY g`,
      [metadata("createProduct", "admin", "bench")],
    );
  });
}

export interface BenchProduct {
  id: string;
  sku: string;
}

/** The products that have stock (the write benchmarks order these). */
export async function stockedProducts(pool: pg.Pool): Promise<BenchProduct[]> {
  const { rows } = await pool.query<BenchProduct>(
    `SELECT p.id::text AS id, p.sku FROM "write"."products" p JOIN "write"."inventory" i ON i.product_id = p.id WHERE i.available > 1000000 ORDER BY p.sku`,
  );
  return rows;
}

/**
 * n single-line orders as placeOrder makes them (idempotency key, order v1, line, reservation,
 * OrderPlaced), every tenth then cancelled as cancelOrder does (order v2, stock released,
 * OrderCancelled). Chunked into transactions of at most 25,000 orders.
 */
export async function seedOrders(pool: pg.Pool, n: number): Promise<{ orders: number; events: number }> {
  let events = 0;
  for (let done = 0; done < n;) {
    const chunk = Math.min(25_000, n - done);
    events += await inTransaction(pool, async (c) => {
      await c.query(
        `CREATE TEMP TABLE seed_orders ON COMMIT DROP AS
         WITH prods AS (
           SELECT (row_number() OVER (ORDER BY p.id) - 1)::int AS k, p.id, p.sku, p.name, p.price_cents
             FROM "write"."products" p JOIN "write"."inventory" i ON i.product_id = p.id WHERE i.available > 1000000
         ), cnt AS (SELECT count(*)::int AS c FROM prods)
         SELECT gen_random_uuid() AS id, 'bench-seed-' || (g % 997) AS customer_id, p.id AS product_id, p.sku, p.name, p.price_cents,
                1 + g % 3 AS quantity, (g % 10 = 0) AS cancelled, g
           FROM generate_series(1, $1::int) AS g CROSS JOIN cnt JOIN prods p ON p.k = (g * 7919 + $2::int) % cnt.c`,
        [chunk, Math.floor(Math.random() * 1_000_000)],
      );
      // The key's answer and position are filled in once the events have their positions (below).
      await c.query(`INSERT INTO "write"."command_keys" (actor_id, command, key, request_hash, created_at, result)
                     SELECT customer_id, 'placeOrder', 'seed-' || id, 'seed', now(), jsonb_build_object('orderId', id)
                       FROM seed_orders`);
      await c.query(`INSERT INTO "write"."orders" (id, customer_id, status, total_cents, item_count, version, placed_at, updated_at)
                     SELECT id, customer_id, CASE WHEN cancelled THEN 'CANCELLED' ELSE 'PLACED' END, quantity * price_cents, quantity,
                            CASE WHEN cancelled THEN 2 ELSE 1 END, now(), now() FROM seed_orders`);
      await c.query(`INSERT INTO "write"."order_lines" (order_id, line_no, product_id, quantity, unit_price_cents)
                     SELECT id, 1, product_id, quantity, price_cents FROM seed_orders`);
      await c.query(`UPDATE "write"."inventory" i SET available = i.available - s.q, reserved = i.reserved + s.q
                       FROM (SELECT product_id, sum(quantity)::int AS q FROM seed_orders WHERE NOT cancelled GROUP BY product_id) s
                      WHERE i.product_id = s.product_id`);
      const placed = await c.query(
        `INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
         SELECT id, 'order', 1, 'OrderPlaced',
                jsonb_build_object('orderId', id, 'customerId', customer_id,
                  'lines', jsonb_build_array(jsonb_build_object('productId', product_id, 'sku', sku, 'name', name, 'quantity', quantity, 'unitPriceCents', price_cents)),
                  'totalCents', quantity * price_cents, 'itemCount', quantity, 'placedAt', ${ISO_NOW}),
                $1::jsonb, now()
           FROM seed_orders ORDER BY g`,
        [metadata("placeOrder", "customer", "bench-seed")],
      );
      const cancelled = await c.query(
        `INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
         SELECT id, 'order', 2, 'OrderCancelled',
                jsonb_build_object('orderId', id, 'customerId', customer_id, 'previousStatus', 'PLACED',
                  'lines', jsonb_build_array(jsonb_build_object('productId', product_id, 'quantity', quantity))),
                $1::jsonb, now()
           FROM seed_orders WHERE cancelled ORDER BY g`,
        [metadata("cancelOrder", "customer", "bench-seed")],
      );
      await c.query(`UPDATE "write"."command_keys" k SET position = e.position
                       FROM seed_orders s JOIN "write"."events" e ON e.stream_id = s.id AND e.stream_version = 1
                      WHERE k.actor_id = s.customer_id AND k.command = 'placeOrder' AND k.key = 'seed-' || s.id`);
      return (placed.rowCount ?? 0) + (cancelled.rowCount ?? 0);
    });
    done += chunk;
  }
  return { orders: n, events };
}

export async function countRows(pool: pg.Pool, table: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(rows[0]!.n);
}

/** Waits (polling, with a deadline) until every projection's checkpoint has reached the last committed event. */
export async function waitForProjections(pool: pg.Pool, readPool = pool, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // The log's last event in the write database, the checkpoints in the read database.
    const [{ rows: last }, { rows: checkpoints }] = await Promise.all([
      pool.query<{ tx_id: string; position: string }>(
        `SELECT e.tx_id::text AS tx_id, e.position::text AS position FROM "write"."events" e
          ORDER BY e.tx_id DESC, e.position DESC LIMIT 1`,
      ),
      readPool.query<{ tx_id: string; position: string; status: string }>(
        `SELECT tx_id::text AS tx_id, position::text AS position, status FROM "read"."projection_checkpoints"
          WHERE name NOT LIKE '%@rebuild'`,
      ),
    ]);
    if (checkpoints.some((c) => c.status === "FAILED")) throw new Error("a projection is FAILED");
    const end = last[0];
    const behind = (c: { tx_id: string; position: string }) =>
      end !== undefined &&
      (BigInt(c.tx_id) < BigInt(end.tx_id) ||
        (BigInt(c.tx_id) === BigInt(end.tx_id) && BigInt(c.position) < BigInt(end.position)));
    if (checkpoints.length > 0 && !checkpoints.some(behind)) return;
    if (Date.now() > deadline) throw new Error(`projections did not catch up within ${timeoutMs} ms`);
    await sleep(50);
  }
}
