import type { SqlSession } from "../db/database";

// Read-only SQL that recomputes what the read tables and the write model should hold, from
// the write model and the event log. Every check returns human-readable problems; none writes.

type Row = Record<string, unknown>;
type Json = Record<string, unknown> | null;

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
};

/** "available is 3, expected 5; units_sold is 1, expected 0" for the keys that differ. */
function fieldDiff(actual: Json, expected: Json): string {
  const keys = [...new Set([...Object.keys(expected ?? {}), ...Object.keys(actual ?? {})])];
  return keys
    .filter((k) => JSON.stringify(actual?.[k]) !== JSON.stringify(expected?.[k]))
    .map((k) => `${k} is ${show(actual?.[k])}, expected ${show(expected?.[k])}`)
    .join("; ");
}

/**
 * Compares the CTEs `expected` and `actual` (both keyed by id, defined by `ctes`) row by row and
 * reports each row that is missing on one side or differs, named by `labelColumn`.
 */
async function tableDiff(
  s: SqlSession,
  table: string,
  what: string,
  ctes: string,
  labelColumn: string,
  labelPrefix = "",
): Promise<string[]> {
  const rows = await s.query<{ id: string; label: string | null; expected: Json; actual: Json }>(`
    WITH ${ctes}
    SELECT COALESCE(e.id, a.id)::text AS id, COALESCE(e.${labelColumn}, a.${labelColumn}) AS label,
           CASE WHEN e.id IS NULL THEN NULL ELSE to_jsonb(e) - 'id' END AS expected,
           CASE WHEN a.id IS NULL THEN NULL ELSE to_jsonb(a) - 'id' END AS actual
      FROM expected e FULL JOIN actual a ON a.id = e.id
     WHERE e.id IS NULL OR a.id IS NULL OR to_jsonb(e) <> to_jsonb(a)
     ORDER BY 1`);
  return rows.map((r) => {
    const name = `${table} ${what} ${r.id}${r.label ? ` (${labelPrefix}${r.label})` : ""}`;
    if (!r.actual) return `${name}: missing from the read table`;
    if (!r.expected) return `${name}: in the read table but not in the write model`;
    return `${name}: ${fieldDiff(r.actual, r.expected)}`;
  });
}

/** read.products = write.products + write.inventory + units of orders that were not cancelled. */
export async function checkCatalog(s: SqlSession): Promise<string[]> {
  return tableDiff(
    s,
    "read.products",
    "product",
    `
    sold AS (
      SELECT l.product_id, sum(l.quantity)::int AS units_sold
        FROM "write".order_lines l JOIN "write".orders o ON o.id = l.order_id
       WHERE o.status <> 'CANCELLED'
       GROUP BY l.product_id
    ), expected AS (
      SELECT p.id, p.sku, p.name, p.description, p.price_cents, i.available, i.available > 0 AS in_stock,
             COALESCE(sold.units_sold, 0) AS units_sold
        FROM "write".products p
        LEFT JOIN "write".inventory i ON i.product_id = p.id
        LEFT JOIN sold ON sold.product_id = p.id
    ), actual AS (
      SELECT id, sku, name, description, price_cents, available, in_stock, units_sold FROM "read".products
    )`,
    "sku",
  );
}

/** read.orders = write.orders, with the lines (sku and name as placed) of the order's OrderPlaced event. */
export async function checkOrders(s: SqlSession): Promise<string[]> {
  return tableDiff(
    s,
    "read.orders",
    "order",
    `
    expected AS (
      SELECT o.id, o.customer_id, o.status, o.total_cents, o.item_count, o.version, o.placed_at, placed.data->'lines' AS lines
        FROM "write".orders o
        LEFT JOIN LATERAL (
          SELECT data FROM "write".events e WHERE e.stream_id = o.id AND e.type = 'OrderPlaced' ORDER BY e.position LIMIT 1
        ) placed ON true
    ), actual AS (
      SELECT id, customer_id, status, total_cents, item_count, version, placed_at, lines FROM "read".orders
    )`,
    "customer_id",
    "customer ",
  );
}

/**
 * The write model and the event log tell the same story:
 * stock = initial + restocks − shipped, reserved = lines of PLACED/PAID orders, one creating
 * event per entity, stream versions 1..n equal to the row's version, status = last event.
 */
export async function checkEventLog(s: SqlSession): Promise<string[]> {
  const problems: string[] = [];

  const stock = await s.query<{
    id: string;
    sku: string;
    on_hand: number | null;
    reserved: number | null;
    available: number | null;
    exp_on_hand: number;
    exp_reserved: number;
  }>(`
    WITH created AS (
      SELECT stream_id AS id, sum((data->>'initialStock')::int) AS q FROM "write".events WHERE type = 'ProductCreated' GROUP BY stream_id
    ), adjusted AS (
      SELECT stream_id AS id, sum((data->>'delta')::int) AS q FROM "write".events WHERE type = 'StockAdjusted' GROUP BY stream_id
    ), shipped AS (
      SELECT (l->>'productId')::uuid AS id, sum((l->>'quantity')::int) AS q
        FROM "write".events e, jsonb_array_elements(e.data->'lines') l WHERE e.type = 'OrderShipped' GROUP BY 1
    ), reserved AS (
      SELECT l.product_id AS id, sum(l.quantity) AS q
        FROM "write".order_lines l JOIN "write".orders o ON o.id = l.order_id WHERE o.status IN ('PLACED', 'PAID') GROUP BY 1
    ), expected AS (
      SELECT p.id, p.sku, i.on_hand, i.reserved, i.available,
             (COALESCE(created.q, 0) + COALESCE(adjusted.q, 0) - COALESCE(shipped.q, 0))::int AS exp_on_hand,
             COALESCE(reserved.q, 0)::int AS exp_reserved
        FROM "write".products p
        LEFT JOIN "write".inventory i ON i.product_id = p.id
        LEFT JOIN created ON created.id = p.id
        LEFT JOIN adjusted ON adjusted.id = p.id
        LEFT JOIN shipped ON shipped.id = p.id
        LEFT JOIN reserved ON reserved.id = p.id
    )
    SELECT id::text AS id, sku, on_hand, reserved, available, exp_on_hand, exp_reserved FROM expected
     WHERE on_hand IS DISTINCT FROM exp_on_hand OR reserved IS DISTINCT FROM exp_reserved
        OR available IS DISTINCT FROM exp_on_hand - exp_reserved
     ORDER BY 1`);
  for (const r of stock) {
    if (r.on_hand === null) {
      problems.push(`write.inventory product ${r.id} (${r.sku}): no inventory row`);
      continue;
    }
    const found = { on_hand: r.on_hand, reserved: r.reserved, available: r.available };
    const expected = { on_hand: r.exp_on_hand, reserved: r.exp_reserved, available: r.exp_on_hand - r.exp_reserved };
    problems.push(
      `write.inventory product ${r.id} (${r.sku}): ${fieldDiff(found, expected)} (from the event log and the open orders)`,
    );
  }

  // Exactly one creating event per entity, naming that entity, and none without its row.
  const creating = await s.query<{ kind: string; id: string; events: number; exists: boolean }>(`
    SELECT 'order' AS kind, o.id::text AS id,
           (SELECT count(*)::int FROM "write".events e WHERE e.stream_id = o.id AND e.type = 'OrderPlaced' AND e.data->>'orderId' = o.id::text) AS events,
           true AS exists
      FROM "write".orders o
    UNION ALL
    SELECT 'product', p.id::text,
           (SELECT count(*)::int FROM "write".events e WHERE e.stream_id = p.id AND e.type = 'ProductCreated' AND e.data->>'productId' = p.id::text),
           true
      FROM "write".products p
    UNION ALL
    SELECT CASE e.type WHEN 'OrderPlaced' THEN 'order' ELSE 'product' END, e.stream_id::text, count(*)::int, false
      FROM "write".events e
     WHERE (e.type = 'OrderPlaced' AND NOT EXISTS (SELECT 1 FROM "write".orders o WHERE o.id = e.stream_id))
        OR (e.type = 'ProductCreated' AND NOT EXISTS (SELECT 1 FROM "write".products p WHERE p.id = e.stream_id))
     GROUP BY 1, 2`);
  for (const r of creating) {
    const event = r.kind === "order" ? "OrderPlaced" : "ProductCreated";
    if (!r.exists)
      problems.push(
        `write.events: ${r.events} ${event} event(s) for ${r.kind} ${r.id}, which is not in write.${r.kind}s`,
      );
    else if (r.events !== 1)
      problems.push(`write.events: ${r.kind} ${r.id} has ${r.events} ${event} events naming it, expected exactly 1`);
  }

  // Stream versions: 1..n without gaps, one stream type, and n = the version of the row.
  const streams = await s.query<{
    id: string;
    types: string;
    events: number;
    lo: number;
    hi: number;
    row_version: number | null;
  }>(`
    SELECT e.stream_id::text AS id, string_agg(DISTINCT e.stream_type, ',') AS types, count(*)::int AS events,
           min(e.stream_version) AS lo, max(e.stream_version) AS hi,
           COALESCE(max(p.version), max(o.version)) AS row_version
      FROM "write".events e
      LEFT JOIN "write".products p ON e.stream_type = 'product' AND p.id = e.stream_id
      LEFT JOIN "write".orders o ON e.stream_type = 'order' AND o.id = e.stream_id
     GROUP BY e.stream_id
    HAVING min(e.stream_version) <> 1 OR max(e.stream_version) <> count(*) OR count(DISTINCT e.stream_type) <> 1
        OR COALESCE(max(p.version), max(o.version)) IS DISTINCT FROM max(e.stream_version)
     ORDER BY 1`);
  for (const r of streams) {
    const name = `write.events stream ${r.id} (${r.types})`;
    if (r.types.includes(",")) problems.push(`${name}: events of more than one stream type`);
    if (r.lo !== 1 || r.hi !== r.events)
      problems.push(
        `${name}: versions ${r.lo}..${r.hi} over ${r.events} events (expected 1..${r.events} without gaps)`,
      );
    if (r.row_version === null) {
      if (!r.types.includes(",")) problems.push(`${name}: no write row for this stream`);
    } else if (r.row_version !== r.hi)
      problems.push(`${name}: last event is version ${r.hi}, the write row has version ${r.row_version}`);
  }

  const status = await s.query<{ id: string; status: string; last_event: string | null }>(`
    SELECT o.id::text AS id, o.status, last.type AS last_event
      FROM "write".orders o
      LEFT JOIN LATERAL (SELECT type FROM "write".events e WHERE e.stream_id = o.id ORDER BY e.stream_version DESC LIMIT 1) last ON true
     WHERE CASE last.type WHEN 'OrderPlaced' THEN 'PLACED' WHEN 'OrderPaid' THEN 'PAID'
                          WHEN 'OrderShipped' THEN 'SHIPPED' WHEN 'OrderCancelled' THEN 'CANCELLED' END IS DISTINCT FROM o.status
     ORDER BY 1`);
  for (const r of status)
    problems.push(`write.orders order ${r.id}: status ${r.status}, but its last event is ${r.last_event ?? "(none)"}`);

  // The order as stored agrees with its OrderPlaced event and with its own lines.
  const orders = await s.query<{ id: string; expected: Json; actual: Json }>(`
    WITH placed AS (
      SELECT DISTINCT ON (e.stream_id) e.stream_id AS id, e.data FROM "write".events e WHERE e.type = 'OrderPlaced' ORDER BY e.stream_id, e.position
    ), stored AS (
      SELECT o.id, o.customer_id, o.total_cents, o.item_count, o.placed_at,
             (SELECT jsonb_agg(jsonb_build_object('productId', l.product_id::text, 'quantity', l.quantity, 'unitPriceCents', l.unit_price_cents) ORDER BY l.line_no)
                FROM "write".order_lines l WHERE l.order_id = o.id) AS lines,
             (SELECT sum(l.quantity * l.unit_price_cents)::int FROM "write".order_lines l WHERE l.order_id = o.id) AS lines_total_cents,
             (SELECT sum(l.quantity)::int FROM "write".order_lines l WHERE l.order_id = o.id) AS lines_item_count
        FROM "write".orders o
    ), from_event AS (
      SELECT p.id, p.data->>'customerId' AS customer_id, (p.data->>'totalCents')::int AS total_cents, (p.data->>'itemCount')::int AS item_count,
             (p.data->>'placedAt')::timestamptz(3) AS placed_at,
             (SELECT jsonb_agg(jsonb_build_object('productId', x->>'productId', 'quantity', (x->>'quantity')::int, 'unitPriceCents', (x->>'unitPriceCents')::int) ORDER BY n)
                FROM jsonb_array_elements(p.data->'lines') WITH ORDINALITY AS t(x, n)) AS lines,
             (SELECT sum((x->>'quantity')::int * (x->>'unitPriceCents')::int)::int FROM jsonb_array_elements(p.data->'lines') x) AS lines_total_cents,
             (SELECT sum((x->>'quantity')::int)::int FROM jsonb_array_elements(p.data->'lines') x) AS lines_item_count
        FROM placed p
    )
    SELECT s.id::text AS id, to_jsonb(f) - 'id' AS expected, to_jsonb(s) - 'id' AS actual
      FROM stored s JOIN from_event f ON f.id = s.id
     WHERE to_jsonb(s) <> to_jsonb(f) OR s.total_cents IS DISTINCT FROM s.lines_total_cents OR s.item_count IS DISTINCT FROM s.lines_item_count
     ORDER BY 1`);
  for (const r of orders) {
    const diff = fieldDiff(r.actual, r.expected);
    problems.push(
      `write.orders order ${r.id}: ${diff || "total_cents/item_count differ from the sum of its lines"} (vs. its OrderPlaced event)`,
    );
  }

  // Every placeOrder key's transaction placed an order of its customer; every order was placed
  // under one key. (A key remembers its transaction; the transaction's events say what it did.)
  const keys = await s.query<{ problem: string }>(`
    WITH placed AS (
      SELECT k.actor_id, k.key, e.stream_id AS order_id
        FROM "write".command_keys k
        LEFT JOIN "write".events e ON e.tx_id = k.tx_id AND e.type = 'OrderPlaced'
       WHERE k.command = 'placeOrder'
    )
    SELECT format('write.command_keys (%s, placeOrder, %s): order %s %s', p.actor_id, p.key, p.order_id,
                  CASE WHEN p.order_id IS NULL THEN 'was never placed' WHEN o.id IS NULL THEN 'does not exist'
                       ELSE 'belongs to customer ' || o.customer_id END) AS problem
      FROM placed p LEFT JOIN "write".orders o ON o.id = p.order_id
     WHERE o.id IS NULL OR o.customer_id <> p.actor_id
    UNION ALL
    SELECT format('write.orders order %s: placed under %s idempotency keys, expected 1', o.id, count(p.key))
      FROM "write".orders o LEFT JOIN placed p ON p.order_id = o.id
     GROUP BY o.id HAVING count(p.key) <> 1
     ORDER BY 1`);
  problems.push(...keys.map((k) => k.problem));

  return problems;
}

export interface Counts {
  products: number;
  orders: number;
  events: number;
}

export async function countAll(s: SqlSession): Promise<Counts> {
  const [row] = await s.query<Counts>(`
    SELECT (SELECT count(*)::int FROM "write".products) AS products,
           (SELECT count(*)::int FROM "write".orders) AS orders,
           (SELECT count(*)::int FROM "write".events) AS events`);
  return row ?? { products: 0, orders: 0, events: 0 };
}

export interface ProjectionState {
  name: string;
  status: string | null;
  lastError: string | null;
  /** Committed events after the checkpoint, in this snapshot. */
  behind: number;
}

export async function projectionStates(s: SqlSession, names: string[]): Promise<ProjectionState[]> {
  const rows = await s.query<Row & { name: string; status: string | null; last_error: string | null; behind: number }>(
    `SELECT n.name, c.status, c.last_error,
            CASE WHEN c.name IS NULL THEN (SELECT count(*)::int FROM "write".events)
                 ELSE (SELECT count(*)::int FROM "write".events e WHERE (e.tx_id, e.position) > (c.tx_id, c.position)) END AS behind
       FROM unnest($1::text[]) AS n(name)
       LEFT JOIN "read".projection_checkpoints c ON c.name = n.name
      ORDER BY n.name`,
    [names],
  );
  return rows.map((r) => ({ name: r.name, status: r.status, lastError: r.last_error, behind: Number(r.behind) }));
}
