import pg from "pg";
import {
  copyBenchDatabase,
  createBenchDatabase,
  seedProducts,
  stockedProducts,
  waitForProjections,
  type BenchDatabase,
} from "./database";
import { scrapeMetrics } from "./http";
import { lagPhase, rebuildPhase, writePhase, type Bench, type Server, type StartServer } from "./phases";
import { drift, nowMs, round } from "./stats";
import { SERVER, serverOf } from "./processes";

/** One size of the event log, measured on the same machine and server build as the others. */
export interface LogSizePoint {
  /** Events in the log when the measurements began. */
  size: number;
  /** Carried from an earlier run's results (`--log-size-from`): that run's date. */
  measuredInAnEarlierRun?: string;
  /** GraphQL placeOrder ÷ the same order transaction as raw SQL, 32 clients each. */
  writeRatio: number;
  graphqlPerSecond: number;
  rawSqlPerSecond: number;
  /** Commit → read_changed, at the same rate at every size. */
  lagP50Ms: number;
  lagP99Ms: number;
  lagRatePerSecond: number;
  /** The projector's batch transactions over the lag run, the slower projection's (by mean), from its histogram. */
  batchP50Ms: number | null;
  batchP99Ms: number | null;
  batchMeanMs: number | null;
  eventsPerBatch: number | null;
  /** The same, per projection. */
  batches: Record<string, BatchStats>;
  /** Over the lag run: the database's blocks read from outside shared_buffers, and found in them, per order placed. */
  blocksReadPerOrder: number;
  blocksHitPerOrder: number;
  /** Of those read from outside shared_buffers, the relations (heap and TOAST, or index) that read the most, per order. */
  blocksReadByRelation: Record<string, number>;
  /** Of those found in shared_buffers, the relations that took the most, per order (not in runs before 2026-12-04). */
  blocksHitByRelation?: Record<string, number>;
  /**
   * Over the lag run: of each table's updates, the share that were heap-only (HOT: the new
   * version on the old one's page, no index entry), for the tables updated more than once per
   * hundred orders (not in runs before 2026-12-04).
   */
  hotUpdateShare?: Record<string, number>;
  /**
   * Over the lag run: WAL written per order placed, and the full-page images in it (after each
   * checkpoint, the first change to a page writes the whole page). The cluster's (pg_stat_wal),
   * which only the bench uses meanwhile.
   */
  walKbPerOrder: number;
  fullPageImagesPerOrder: number;
  /** Over the lag run: where the orders projection's inserts went in read.orders (see ordersPlacement(); not in runs before 2026-12-03). */
  readOrdersPlacement?: OrdersPlacement;
  /** The projector catching up with the events just seeded (a server started on the grown log). */
  catchUpEventsPerSecond: number;
  /** Seeding this step with SQL: one transaction per order, as the commands commit them. */
  seedSeconds: number;
  seededEvents: number;
  seedEventsPerSecond: number;
  /** write.events with its indexes (MB), and the whole database. */
  logMb: number;
  databaseMb: number;
  /** `npm run verify` on the grown log, where it was run (it reads every table whole). */
  verified?: boolean;
  /** The same write ratio and lag, on the same database right after, from the `--baseline` checkout's server. */
  baseline?: LogSizeMeasures;
}

/** What is measured on one build's servers at one size. */
type LogSizeMeasures = Pick<
  LogSizePoint,
  | "writeRatio"
  | "graphqlPerSecond"
  | "rawSqlPerSecond"
  | "lagP50Ms"
  | "lagP99Ms"
  | "batchP50Ms"
  | "batchP99Ms"
  | "batchMeanMs"
  | "eventsPerBatch"
  | "batches"
  | "blocksReadPerOrder"
  | "blocksHitPerOrder"
  | "blocksReadByRelation"
  | "blocksHitByRelation"
  | "hotUpdateShare"
  | "walKbPerOrder"
  | "fullPageImagesPerOrder"
  | "readOrdersPlacement"
>;

/**
 * Where the rows of the orders placed over a lag run sit in read.orders: at the end of the table,
 * or in pages it had before the run, which an insert takes when the table's free space map offers
 * them. VACUUM records there the room a dead row version leaves, and a non-HOT update (every
 * status change: read.orders has an index on status) whose page is full leaves one behind.
 */
export interface OrdersPlacement {
  /** read.orders' pages before the run, and of them those its free space map offers a row of the newest orders' size, before and after. */
  pagesBefore: number;
  pagesWithRoomBefore: number;
  pagesWithRoomAfter: number;
  /** The run's orders in read.orders, of them those in pages below pagesBefore, and how many such pages. */
  placed: number;
  inOldPages: number;
  oldPagesTaken: number;
  /** The lowest and the highest of those pages (their position in the table). */
  firstOldPage: number | null;
  lastOldPage: number | null;
}

export interface RebuildPoint {
  size: number;
  /** Carried from an earlier run's results (`--log-size-from`): that run's date. */
  measuredInAnEarlierRun?: string;
  eventsPerSec: number;
  seconds: number;
  consistent: boolean;
  peakRssMb: number | null;
  perProjection: { name: string; batchSeconds: number }[];
}

/**
 * The smallest and the largest log measured again at the end, in turns (ABBA: the trend of the
 * machine over the rounds cancels out), each on fresh servers of this build: the smallest on a
 * copy of its database made when it was measured. The log's drift, the target, is taken from
 * these means rather than from one measurement of each, taken minutes apart.
 */
export interface LogSizeInterleaved {
  sizes: [number, number];
  /** Carried from an earlier run's results (`--log-size-from`): that run's date. */
  measuredInAnEarlierRun?: string;
  /** In the order measured, each with all its measures (the pages and WAL per order among them). */
  runs: ({ size: number } & LogSizeMeasures)[];
  /** The means of each size's runs. */
  smallest: { writeRatio: number; lagP99Ms: number };
  largest: { writeRatio: number; lagP99Ms: number };
  /** largest ÷ smallest − 1 (the target holds it within ±0.15) */
  lagP99Drift: number;
  writeRatioDrift: number;
}

export interface LogSizeOptions {
  /** Rounds of the smallest and the largest log in turns at the end (default 2: ABBA; 0: none). */
  interleavedRounds?: number;
  /** Where to rebuild both projections too (default: 1,000,000 when measured). */
  rebuildAt?: number[];
  /** Where to run `npm run verify` (default: 1,000,000 when measured). */
  verifyAt?: number[];
  /** Orders/s of every lag run; default half the GraphQL rate measured at the first size. */
  lagRatePerSecond?: number;
  /** Sessions seeding side by side. */
  seedSessions?: number;
  /**
   * Another checkout (`--baseline`): at each size its servers measure the write ratio and the lag
   * too, on the same database, right after this build's (the code before a change, beside it).
   */
  baselineRoot?: string;
}

const PLACE_META = {
  correlationId: "bench-seed",
  causationId: null,
  actor: { id: "bench-seed", role: "customer" },
  command: "placeOrder",
};
const CANCEL_META = { ...PLACE_META, command: "cancelOrder" };

/**
 * A procedure that places n single-line orders, each in a transaction of its own, as placeOrder
 * does (stock reserved, order and line, OrderPlaced, the idempotency key with its result and
 * position), and cancels every tenth in a second one, as cancelOrder does (order v2, stock
 * released, OrderCancelled). One transaction per command gives every event the transaction id
 * a command would: the projector reads the log as it would a real one, and verify finds each
 * key's order through its transaction. The orders carry no payment deadline (as orders placed
 * before deadlines existed), so the order expiry leaves them alone.
 */
const SEED_PROCEDURE = `
CREATE OR REPLACE PROCEDURE pg_temp.bench_seed_orders(n int, salt int, first int, place_meta jsonb, cancel_meta jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  ids uuid[]; skus text[]; names text[]; prices int[]; cnt int;
  k int; oid uuid; cust text; q int; at timestamptz; pos bigint;
BEGIN
  SELECT array_agg(p.id ORDER BY p.id), array_agg(p.sku ORDER BY p.id), array_agg(p.name ORDER BY p.id),
         array_agg(p.price_cents ORDER BY p.id)
    INTO ids, skus, names, prices
    FROM "write"."products" p JOIN "write"."inventory" i ON i.product_id = p.id
   WHERE i.available > 1000000;
  cnt := cardinality(ids);
  FOR g IN first..first + n - 1 LOOP
    k := 1 + ((g::bigint * 7919 + salt) % cnt)::int;
    oid := gen_random_uuid();
    cust := 'bench-seed-' || (g % 997);
    q := 1 + g % 3;
    at := date_trunc('milliseconds', now());
    UPDATE "write"."inventory" SET available = available - q, reserved = reserved + q WHERE product_id = ids[k];
    INSERT INTO "write"."orders" (id, customer_id, status, total_cents, item_count, version, placed_at, updated_at)
    VALUES (oid, cust, 'PLACED', q * prices[k], q, 1, at, at);
    INSERT INTO "write"."order_lines" (order_id, line_no, product_id, quantity, unit_price_cents)
    VALUES (oid, 1, ids[k], q, prices[k]);
    INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
    VALUES (oid, 'order', 1, 'OrderPlaced',
            jsonb_build_object('orderId', oid, 'customerId', cust,
              'lines', jsonb_build_array(jsonb_build_object('productId', ids[k], 'sku', skus[k], 'name', names[k],
                                                            'quantity', q, 'unitPriceCents', prices[k])),
              'totalCents', q * prices[k], 'itemCount', q,
              'placedAt', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
            jsonb_set(place_meta, '{actor,id}', to_jsonb(cust)), at)
    RETURNING position INTO pos;
    INSERT INTO "write"."command_keys" (actor_id, command, key, request_hash, created_at, result, position)
    VALUES (cust, 'placeOrder', 'seed-' || oid, 'seed', at, jsonb_build_object('orderId', oid), pos);
    COMMIT;
    IF g % 10 = 0 THEN
      at := date_trunc('milliseconds', now());
      UPDATE "write"."inventory" SET available = available + q, reserved = reserved - q WHERE product_id = ids[k];
      UPDATE "write"."orders" SET status = 'CANCELLED', version = 2, updated_at = at WHERE id = oid;
      INSERT INTO "write"."events" (stream_id, stream_type, stream_version, type, data, metadata, occurred_at)
      VALUES (oid, 'order', 2, 'OrderCancelled',
              jsonb_build_object('orderId', oid, 'customerId', cust, 'previousStatus', 'PLACED',
                'lines', jsonb_build_array(jsonb_build_object('productId', ids[k], 'sku', skus[k], 'name', names[k],
                                                              'quantity', q, 'unitPriceCents', prices[k])),
                'reason', 'CUSTOMER'),
              jsonb_set(cancel_meta, '{actor,id}', to_jsonb(cust)), at);
      COMMIT;
    END IF;
  END LOOP;
END $$`;

/** Events per order the procedure writes: 1 OrderPlaced, and an OrderCancelled for every tenth. */
const EVENTS_PER_ORDER = 1.1;

async function eventCount(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "write"."events"`);
  return Number(rows[0]!.n);
}

/**
 * Grows the log to at least `target` events with real transactions, one per command, from
 * `sessions` connections side by side. Commits do not wait for their WAL to reach the disk
 * (synchronous_commit off, for these sessions only): the log, its indexes and its WAL are
 * written as by the commands; only a crash could lose the last few hundred milliseconds.
 */
export async function growLog(
  db: BenchDatabase,
  target: number,
  sessions = 2,
): Promise<{ events: number; seeded: number; seconds: number }> {
  const before = await eventCount(db.pool);
  const orders = Math.max(0, Math.ceil((target - before) / EVENTS_PER_ORDER));
  const started = nowMs();
  if (orders > 0) {
    const salt = Math.floor(Math.random() * 1_000_000);
    const share = Math.ceil(orders / sessions);
    await Promise.all(
      Array.from({ length: sessions }, async (_, s) => {
        const n = Math.min(share, orders - s * share);
        if (n <= 0) return;
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        try {
          await client.query("SET synchronous_commit = off");
          await client.query(SEED_PROCEDURE);
          // Numbered on from what the log holds, so every step (and session) spreads its orders anew.
          await client.query(`CALL pg_temp.bench_seed_orders($1, $2, $3, $4, $5)`, [
            n,
            salt,
            before + s * share + 1,
            JSON.stringify(PLACE_META),
            JSON.stringify(CANCEL_META),
          ]);
        } finally {
          await client.end();
        }
      }),
    );
  }
  const events = await eventCount(db.pool);
  return { events, seeded: events - before, seconds: (nowMs() - started) / 1000 };
}

/**
 * `work`, with what autovacuum does on a live database (it is off on these machines) done
 * meanwhile: every few seconds, VACUUM each table whose dead row versions passed its threshold
 * (50 + 20 % of its live rows, the defaults). Run while the log grows and while a projector
 * catches up, when the catalog projection rewrites each of its 2,000 hot product rows thousands
 * of times. Gives work's result and the number of tables vacuumed.
 */
async function whileVacuuming<T>(
  pool: pg.Pool,
  log: (line: string) => void,
  work: () => Promise<T>,
  everyMs = 5_000,
): Promise<{ result: T; vacuums: number }> {
  let stopped = false;
  let vacuums = 0;
  let wake: () => void = () => {};
  const loop = (async () => {
    while (!stopped) {
      try {
        const { rows } = await pool.query<{ name: string }>(`
          SELECT format('%I.%I', schemaname, relname) AS name FROM pg_stat_user_tables
           WHERE n_dead_tup > 50 + 0.2 * n_live_tup`);
        for (const { name } of rows) {
          if (stopped) break;
          await pool.query(`VACUUM ${name}`);
          vacuums++;
        }
      } catch (error) {
        log(`    autovacuum stand-in: ${(error as Error).message}`);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, everyMs);
      });
    }
  })();
  let result: T;
  try {
    result = await work();
  } finally {
    stopped = true;
    wake();
    await loop; // the vacuum under way, if any, finishes and counts
  }
  return { result, vacuums };
}

/** A Prometheus histogram's buckets (upper bound → cumulative count) for one label set. */
function buckets(metrics: Map<string, number>, name: string, label: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const [key, value] of metrics) {
    if (!key.startsWith(`${name}_bucket{`) || !key.includes(label)) continue;
    const le = /le="([^"]+)"/.exec(key)?.[1];
    if (le !== undefined) out.set(le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), value);
  }
  return out;
}

/** A quantile of the observations between two scrapes, interpolated inside its bucket as histogram_quantile does. */
export function histogramQuantile(before: Map<number, number>, after: Map<number, number>, q: number): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! < rank) continue;
    const upper = bounds[i]!;
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    if (!Number.isFinite(upper)) return lower; // in the +Inf bucket: its lower bound is all that is known
    const below = i === 0 ? 0 : counts[i - 1]!;
    const inBucket = counts[i]! - below;
    return lower + (upper - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1);
  }
  return null;
}

const BATCH = "shop_projection_batch_duration_seconds";

export interface BatchStats {
  p50: number | null;
  p99: number | null;
  mean: number | null;
  eventsPerBatch: number | null;
}

function batchStats(before: Map<string, number>, after: Map<string, number>, projection: string): BatchStats {
  const label = `projection="${projection}"`;
  const d = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const count = d(`${BATCH}_count{${label}}`);
  const events = d(`shop_projection_events_total{${label}}`);
  const b0 = buckets(before, BATCH, label);
  const b1 = buckets(after, BATCH, label);
  const ms = (s: number | null) => (s === null ? null : round(s * 1000, 2));
  return {
    p50: ms(histogramQuantile(b0, b1, 0.5)),
    p99: ms(histogramQuantile(b0, b1, 0.99)),
    mean: count > 0 ? round((d(`${BATCH}_sum{${label}}`) / count) * 1000, 2) : null,
    eventsPerBatch: count > 0 ? round(events / count, 1) : null,
  };
}

/** Committed events the furthest-behind projection has still to apply (all of them before it has a checkpoint). */
async function backlog(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`
    WITH c AS (
      SELECT tx_id, position FROM "read"."projection_checkpoints"
       WHERE name NOT LIKE '%@rebuild' ORDER BY tx_id, position LIMIT 1)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM c)
                THEN (SELECT count(*) FROM "write"."events" e, c WHERE (e.tx_id, e.position) > (c.tx_id, c.position))
                ELSE (SELECT count(*) FROM "write"."events") END::text AS n`);
  return Number(rows[0]!.n);
}

/**
 * The database's blocks read from outside shared_buffers (the OS cache or the disk) and found in
 * them, so far, and the orders inserted (from the statistics: a count(*) would read the table,
 * and its reads would land in the window measured): over a lag run, what each order cost in
 * pages, API and projector together. An index whose keys arrive in random order reads a page of
 * its own for each insert once it has outgrown shared_buffers; one whose keys arrive in order
 * keeps writing the same few.
 */
async function blockCounts(pool: pg.Pool): Promise<{
  read: number;
  hit: number;
  orders: number;
  walBytes: number;
  walFpi: number;
  byRelation: Map<string, number>;
  hitByRelation: Map<string, number>;
  updates: Map<string, { all: number; hot: number }>;
}> {
  const { rows } = await pool.query<{ read: string; hit: string; orders: string; wal_bytes: string; wal_fpi: string }>(`
    SELECT blks_read::text AS read, blks_hit::text AS hit,
           (SELECT n_tup_ins FROM pg_stat_user_tables WHERE schemaname = 'write' AND relname = 'orders')::text AS orders,
           (SELECT wal_bytes::text FROM pg_stat_wal) AS wal_bytes, (SELECT wal_fpi::text FROM pg_stat_wal) AS wal_fpi
      FROM pg_stat_database WHERE datname = current_database()`);
  // Which tables (heap, TOAST) and indexes the blocks were read for.
  const relations = await pool.query<{ name: string; read: string; hit: string }>(`
    SELECT schemaname || '.' || relname AS name,
           (coalesce(heap_blks_read, 0) + coalesce(toast_blks_read, 0) + coalesce(tidx_blks_read, 0))::text AS read,
           (coalesce(heap_blks_hit, 0) + coalesce(toast_blks_hit, 0) + coalesce(tidx_blks_hit, 0))::text AS hit
      FROM pg_statio_user_tables
    UNION ALL
    SELECT schemaname || '.' || indexrelname, coalesce(idx_blks_read, 0)::text, coalesce(idx_blks_hit, 0)::text
      FROM pg_statio_user_indexes`);
  const updates = await pool.query<{ name: string; all: string; hot: string }>(`
    SELECT schemaname || '.' || relname AS name, n_tup_upd::text AS all, n_tup_hot_upd::text AS hot FROM pg_stat_user_tables`);
  const r = rows[0]!;
  return {
    read: Number(r.read),
    hit: Number(r.hit),
    orders: Number(r.orders),
    walBytes: Number(r.wal_bytes),
    walFpi: Number(r.wal_fpi),
    byRelation: new Map(relations.rows.map((x) => [x.name, Number(x.read)])),
    hitByRelation: new Map(relations.rows.map((x) => [x.name, Number(x.hit)])),
    updates: new Map(updates.rows.map((x) => [x.name, { all: Number(x.all), hot: Number(x.hot) }])),
  };
}

/**
 * `work` on one session, whose statistics then reach the shared counters at once. A session
 * reports its own lazily (a second or more later), so the bench's reads of read.orders around a
 * lag run would land in blockCounts' window: pg_freespace() alone is a buffer hit per page of
 * the table, 80 per order at 10⁷ events.
 */
async function countedNow<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    const result = await work(client);
    await client.query("SELECT pg_stat_force_next_flush()");
    await client.query("SELECT 1"); // reported when the session went idle after the request
    return result;
  } finally {
    client.release();
  }
}

/**
 * read.orders' pages, and of them those its free space map offers a row of the size of its
 * newest (with its tuple header and line pointer; not from the statistics, which a rebuilt table
 * has none of until ANALYZE).
 */
async function ordersFreeSpace(pool: pg.Pool): Promise<{ pages: number; withRoom: number }> {
  await pool.query("CREATE EXTENSION IF NOT EXISTS pg_freespacemap");
  const { rows } = await countedNow(pool, (client) =>
    client.query<{ pages: string; with_room: string }>(`
    WITH width AS (SELECT coalesce(avg(pg_column_size(o.*)), 0) + 28 AS bytes
                     FROM (SELECT * FROM "read"."orders" ORDER BY placed_at DESC LIMIT 200) o)
    SELECT (pg_relation_size('"read"."orders"') / current_setting('block_size')::int)::text AS pages,
           (SELECT count(*) FROM pg_freespace('"read"."orders"'::regclass), width WHERE avail >= width.bytes)::text AS with_room`),
  );
  return { pages: Number(rows[0]!.pages), withRoom: Number(rows[0]!.with_room) };
}

/** Where the orders placed since `since` sit in read.orders, against the table and its free space before (OrdersPlacement). */
async function ordersPlacement(
  pool: pg.Pool,
  since: Date,
  before: { pages: number; withRoom: number },
): Promise<OrdersPlacement> {
  const { rows } = await countedNow(pool, (client) =>
    client.query<{ placed: string; in_old: string; old_pages: string; first: string; last: string }>(
      `SELECT count(*)::text AS placed, count(*) FILTER (WHERE page < $2)::text AS in_old,
            count(DISTINCT page) FILTER (WHERE page < $2)::text AS old_pages,
            min(page) FILTER (WHERE page < $2)::text AS first, max(page) FILTER (WHERE page < $2)::text AS last
       FROM (SELECT (ctid::text::point)[0]::bigint AS page FROM "read"."orders" WHERE placed_at >= $1) p`,
      [since, before.pages],
    ),
  );
  const r = rows[0]!;
  return {
    pagesBefore: before.pages,
    pagesWithRoomBefore: before.withRoom,
    pagesWithRoomAfter: (await ordersFreeSpace(pool)).withRoom,
    placed: Number(r.placed),
    inOldPages: Number(r.in_old),
    oldPagesTaken: Number(r.old_pages),
    firstOldPage: r.first === null ? null : Number(r.first),
    lastOldPage: r.last === null ? null : Number(r.last),
  };
}

/** The relations that read the most blocks between two blockCounts, per order (the first few). */
function readsByRelation(
  before: Map<string, number>,
  after: Map<string, number>,
  orders: number,
  top = 6,
  decimals = 2,
): Record<string, number> {
  return Object.fromEntries(
    [...after]
      .map(([name, n]) => [name, (n - (before.get(name) ?? 0)) / orders] as const)
      .filter(([, perOrder]) => perOrder >= 10 ** -decimals)
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, perOrder]) => [name, round(perOrder, decimals)]),
  );
}

/** Per table updated more than once per hundred orders between the two counts: the share of its updates that were HOT. */
function hotShares(
  before: Map<string, { all: number; hot: number }>,
  after: Map<string, { all: number; hot: number }>,
  orders: number,
): Record<string, number> {
  const shares: [string, number][] = [];
  for (const [name, { all, hot }] of after) {
    const updated = all - (before.get(name)?.all ?? 0);
    if (updated > orders / 100) shares.push([name, round((hot - (before.get(name)?.hot ?? 0)) / updated, 3)]);
  }
  return Object.fromEntries(shares.sort((a, b) => a[0].localeCompare(b[0])));
}

async function sizesMb(pool: pg.Pool): Promise<{ logMb: number; databaseMb: number }> {
  const { rows } = await pool.query<{ log: string; db: string }>(
    `SELECT pg_total_relation_size('"write"."events"')::text AS log, pg_database_size(current_database())::text AS db`,
  );
  return { logMb: round(Number(rows[0]!.log) / 2 ** 20, 0), databaseMb: round(Number(rows[0]!.db) / 2 ** 20, 0) };
}

/**
 * How the write path, the projection lag and the projector cope with a growing event log: one
 * database of its own, its log grown in steps to each size with SQL (the rows and events the
 * commands write, one transaction per command) while no server runs; then at each size a server
 * started on it catches up (its rate is the projector's throughput at that size; both with
 * autovacuum's work done as it would be, see whileVacuuming()), VACUUM ANALYZE
 * and a CHECKPOINT, the write ratio at 32 clients (shipped defaults), the lag at one fixed rate (a
 * second server, READ_YOUR_WRITES_TIMEOUT_MS=0) with the projector's batch times and the pages and
 * WAL per order over that run (and the same on the `--baseline` checkout's servers), and where
 * asked, `npm run verify` and a rebuild of both projections. The smallest size is copied as
 * measured; at the end it and the largest are measured again in turns (LogSizeInterleaved).
 */
export async function logSizeCurve(
  bench: Bench,
  startAnyServer: StartServer,
  stopServer: (server: Server) => Promise<void>,
  sizes: number[],
  options: LogSizeOptions = {},
): Promise<{ logSize: LogSizePoint[]; rebuild: RebuildPoint[]; interleaved?: LogSizeInterleaved }> {
  // No order placed by one measurement falls due during a later one on the same database (or its
  // copy): with the default 15 minutes, the servers of the 10⁷ step and of the first round in
  // turns at the smallest size began by expiring the orders of the measurements before them.
  const startServer: StartServer = (name, script, env) =>
    startAnyServer(name, script, { ORDER_PAYMENT_TIMEOUT_SECONDS: "86400", ...env });
  const rebuildAt = options.rebuildAt ?? sizes.filter((s) => s === 1_000_000);
  const verifyAt = options.verifyAt ?? sizes.filter((s) => s === 1_000_000);
  const db = await createBenchDatabase();
  // The phases read bench.db / bench.products and spawn children on DATABASE_URL: point them here.
  const spawnOn =
    (target: BenchDatabase): Bench["spawn"] =>
    (name, script, env = {}, args = []) =>
      bench.spawn(name, script, { DATABASE_URL: target.url, ...env }, args);
  const local: Bench = { ...bench, db, readDb: undefined, spawn: spawnOn(db) };
  // The copy of the smallest size has the same products (local.products, once seeded).
  const benchOn = (target: BenchDatabase): Bench =>
    target === db ? local : { ...local, db: target, spawn: spawnOn(target) };
  const env = { DATABASE_URL: db.url };
  // The smallest size, copied as measured, for the interleaved rounds at the end.
  let smallest: { size: number; db: BenchDatabase; held: pg.PoolClient } | undefined;
  const logSize: LogSizePoint[] = [];
  const rebuild: RebuildPoint[] = [];
  let lagRate = options.lagRatePerSecond;

  /** The server of a checkout: this one, or `--baseline`'s. */
  interface Build {
    script: string;
    env: Record<string, string>;
    /** Appended to the servers' names. */
    label: string;
  }
  const ours: Build = { script: SERVER, env: {}, label: "" };
  const baselineBuild: Build | undefined = options.baselineRoot
    ? {
        script: serverOf(options.baselineRoot),
        env: { TSX_TSCONFIG_PATH: `${options.baselineRoot}/tsconfig.json` },
        label: ", baseline",
      }
    : undefined;

  /**
   * One build's write ratio (32 clients, on `running` if given, else on a server it starts; it
   * stops it) and lag at the fixed rate (on a second server of the same build that answers
   * mutations at once), with its projector's batch times over the lag run.
   */
  const measureBuild = async (size: number, build: Build, target = db, running?: Server): Promise<LogSizeMeasures> => {
    const { script, label } = build;
    const on = benchOn(target);
    const server =
      running ??
      (await startServer(`server (log ${size}, defaults${label})`, script, { DATABASE_URL: target.url, ...build.env }));
    const write = await writePhase(on, server, [32]);
    await stopServer(server);
    if (!(write.graphql[32]!.perSecond > 0 && write.rawSql[32]!.perSecond > 0))
      throw new Error(`log ${size}${label}: no order went through (${JSON.stringify(write.graphql[32])})`);
    const lagServer = await startServer(`server (log ${size}, READ_YOUR_WRITES_TIMEOUT_MS=0${label})`, script, {
      DATABASE_URL: target.url,
      ...build.env,
      READ_YOUR_WRITES_TIMEOUT_MS: "0",
    });
    try {
      lagRate ??= write.graphql[32]!.perSecond / 2;
      const space = await ordersFreeSpace(target.pool);
      const since = new Date();
      const before = await scrapeMetrics(lagServer.url);
      const io = await blockCounts(target.pool);
      const lag = await lagPhase(on, lagServer, lagRate);
      const ioAfter = await blockCounts(target.pool);
      const placement = await ordersPlacement(target.pool, since, space);
      const after = await scrapeMetrics(lagServer.url);
      const orders = Math.max(1, ioAfter.orders - io.orders);
      const batches = Object.fromEntries(
        ["catalog", "orders"].map((name) => [name, batchStats(before, after, name)] as const),
      );
      const slowest = Object.values(batches).reduce((a, c) => ((c.mean ?? 0) > (a.mean ?? 0) ? c : a));
      return {
        writeRatio: write.ratioAt[32]!,
        graphqlPerSecond: write.graphql[32]!.perSecond,
        rawSqlPerSecond: write.rawSql[32]!.perSecond,
        lagP50Ms: lag.p50,
        lagP99Ms: lag.p99,
        batchP50Ms: slowest.p50,
        batchP99Ms: slowest.p99,
        batchMeanMs: slowest.mean,
        eventsPerBatch: slowest.eventsPerBatch,
        batches,
        blocksReadPerOrder: round((ioAfter.read - io.read) / orders, 2),
        blocksHitPerOrder: round((ioAfter.hit - io.hit) / orders, 1),
        blocksReadByRelation: readsByRelation(io.byRelation, ioAfter.byRelation, orders),
        blocksHitByRelation: readsByRelation(io.hitByRelation, ioAfter.hitByRelation, orders, 8, 1),
        hotUpdateShare: hotShares(io.updates, ioAfter.updates, orders),
        walKbPerOrder: round((ioAfter.walBytes - io.walBytes) / 1024 / orders, 1),
        fullPageImagesPerOrder: round((ioAfter.walFpi - io.walFpi) / orders, 2),
        readOrdersPlacement: placement,
      };
    } finally {
      await stopServer(lagServer);
    }
  };

  const summary = (m: LogSizeMeasures) =>
    `writeRatio ${m.writeRatio} (${m.graphqlPerSecond} vs ${m.rawSqlPerSecond}/s), lag p50 ${m.lagP50Ms} ms p99 ${m.lagP99Ms} ms at ${round(lagRate!, 1)}/s, per order: blocks read ${m.blocksReadPerOrder} (${JSON.stringify(m.blocksReadByRelation)}) hit ${m.blocksHitPerOrder} (${JSON.stringify(m.blocksHitByRelation)}), HOT ${JSON.stringify(m.hotUpdateShare)}, WAL ${m.walKbPerOrder} KB with ${m.fullPageImagesPerOrder} full pages, read.orders ${JSON.stringify(m.readOrdersPlacement)}, batches ${JSON.stringify(m.batches)}`;

  try {
    // Migrations and the catalog first, as in the main bench.
    const first = await startServer("server (log sizes: set-up)", SERVER, env);
    await seedProducts(db.pool, 2_000);
    await waitForProjections(db.pool);
    await stopServer(first);
    local.products = await stockedProducts(db.pool);

    for (const size of sizes) {
      bench.log(`  log size ${size}: seeding with SQL (one transaction per command)`);
      const { result: seeded, vacuums: seedVacuums } = await whileVacuuming(db.pool, bench.log, () =>
        growLog(db, size, options.seedSessions),
      );
      bench.log(
        `    ${seeded.seeded} events in ${round(seeded.seconds, 1)} s (${Math.round(seeded.seeded / Math.max(seeded.seconds, 0.001))} events/s); log now ${seeded.events}; ${seedVacuums} table vacuums meanwhile`,
      );

      const a = await startServer(`server (log ${size}, defaults)`, SERVER, env);
      const catchUpStart = nowMs();
      const behind = await backlog(db.pool);
      const { vacuums: catchUpVacuums } = await whileVacuuming(db.pool, bench.log, () =>
        waitForProjections(db.pool, db.pool, 3_600_000),
      );
      const catchUpSeconds = (nowMs() - catchUpStart) / 1000;
      // And once more at the end, with statistics: the dead versions of the rows the projector
      // rewrote last (every catalog update is a new row version).
      await db.pool.query("VACUUM (ANALYZE)");
      // And what its checkpointer would have written out long ago: the seed's and the catch-up's
      // dirty pages (hundreds of MB at 10⁶), which a timed checkpoint would otherwise flush in the
      // middle of the measurement (without it, the raw SQL's own p99 grew ×2.6 from 10⁵ to 10⁶).
      await db.pool.query("CHECKPOINT");
      const events = await eventCount(db.pool);
      bench.log(
        `    caught up ${behind} events in ${round(catchUpSeconds, 1)} s (${Math.round(behind / catchUpSeconds)} events/s); ${catchUpVacuums} table vacuums meanwhile`,
      );
      const measured = await measureBuild(size, ours, db, a);
      const baseline = baselineBuild && (await measureBuild(size, baselineBuild));
      // verify and the rebuild run beside a server, as an operator's would.
      const b = await startServer(`server (log ${size})`, SERVER, env);

      let verified: boolean | undefined;
      if (verifyAt.includes(size)) {
        const started = nowMs();
        // verify reads every table whole: no per-query timeout (DB_QUERY_TIMEOUT_MS) on this cold path.
        const check = local.spawn(`verify (log ${size})`, "scripts/verify.ts", { DB_QUERY_TIMEOUT_MS: "0" }, [
          "--wait",
          "60",
        ]);
        verified = (await check.wait()) === 0;
        bench.log(`    verify: ${verified ? "ok" : "FAILED"} in ${round((nowMs() - started) / 1000, 1)} s`);
        if (!verified) bench.notes.push(`log size ${size}: verify failed:\n${check.log.slice(-2_000)}`);
      }
      if (rebuildAt.includes(size)) {
        const r = await rebuildPhase({ ...local, settings: { ...local.settings, rebuildEvents: 0 } }, b);
        rebuild.push({
          size: r.events,
          eventsPerSec: r.eventsPerSecond,
          seconds: r.seconds,
          consistent: r.consistent,
          peakRssMb: r.peakRssMb ?? null,
          perProjection: r.perProjection,
        });
        bench.log(`    rebuild: ${r.events} events in ${r.seconds} s, ${r.eventsPerSecond} events/s`);
      }
      await stopServer(b);

      const point: LogSizePoint = {
        size: events,
        ...measured,
        lagRatePerSecond: round(lagRate!, 1),
        catchUpEventsPerSecond: Math.round(behind / catchUpSeconds),
        seedSeconds: round(seeded.seconds, 1),
        seededEvents: seeded.seeded,
        seedEventsPerSecond: Math.round(seeded.seeded / Math.max(seeded.seconds, 0.001)),
        ...(await sizesMb(db.pool)),
        ...(verified === undefined ? {} : { verified }),
        ...(baseline === undefined ? {} : { baseline }),
      };
      logSize.push(point);
      bench.log(`    ${events} events: ${summary(measured)}, log ${point.logMb} MB`);
      if (baseline) bench.log(`    ${events} events, baseline: ${summary(baseline)}`);
      if (logSize.length === 1 && sizes.length > 1) {
        const copy = await copyBenchDatabase(db);
        // A session on the copy until the end: a bench run started meanwhile drops only bench
        // databases nobody is connected to (dropStaleBenchDatabases), and the copy waits idle for
        // up to an hour.
        smallest = { size: events, db: copy, held: await copy.pool.connect() };
      }
    }

    let interleaved: LogSizeInterleaved | undefined;
    if (smallest && (options.interleavedRounds ?? 2) > 0) {
      const largest = { size: logSize.at(-1)!.size, db };
      const order = Array.from({ length: options.interleavedRounds ?? 2 }, (_, i) =>
        i % 2 === 0 ? [smallest!, largest] : [largest, smallest!],
      ).flat();
      bench.log(`  the smallest and the largest log in turns: ${order.map((o) => o.size).join(", ")}`);
      const runs: LogSizeInterleaved["runs"] = [];
      for (const { size, db: target } of order) {
        const m = await measureBuild(size, { ...ours, label: ", in turns" }, target);
        runs.push({ size, ...m });
        bench.log(`    ${size} events, in turns: ${summary(m)}`);
      }
      const mean = (size: number, f: (r: (typeof runs)[number]) => number) => {
        const of = runs.filter((r) => r.size === size).map(f);
        return round(of.reduce((a, b) => a + b, 0) / of.length, 3);
      };
      const at = (size: number) => ({
        writeRatio: mean(size, (r) => r.writeRatio),
        lagP99Ms: mean(size, (r) => r.lagP99Ms),
      });
      const [a, b] = [at(smallest.size), at(largest.size)];
      interleaved = {
        sizes: [smallest.size, largest.size],
        runs,
        smallest: a,
        largest: b,
        lagP99Drift: drift(a.lagP99Ms, b.lagP99Ms),
        writeRatioDrift: drift(a.writeRatio, b.writeRatio),
      };
      bench.log(
        `    in turns: lag p99 ${a.lagP99Ms} → ${b.lagP99Ms} ms (drift ${interleaved.lagP99Drift}), writeRatio ${a.writeRatio} → ${b.writeRatio} (drift ${interleaved.writeRatioDrift})`,
      );
    }
    return { logSize, rebuild, interleaved };
  } finally {
    smallest?.held.release();
    await smallest?.db.drop();
    await db.drop();
  }
}
