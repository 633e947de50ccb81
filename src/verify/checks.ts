import { cancellationReasonOf } from "../events";
import { uuidNumber } from "../shared/ids";
import type { LoggedEvent, OrderViewRow, ProductViewRow, WriteOrderLine, WriteSide } from "./sides";

// Recomputes what the read tables and the write model should hold from the write model and the
// event log, in memory, from rows src/verify/sides.ts read: no SQL joins the two sides. Every
// check returns human-readable problems, in the order of the entities' ids; none writes.
//
// Values are compared as Postgres compares jsonb, and event data is read as SQL would read it
// (`data->>'key'`, then a cast): a value the cast would reject stops verify with an error
// rather than being guessed at.

/** A row as compared and shown: column name to a JSON value. */
type Row = Record<string, unknown>;

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const PRINTABLE_ASCII = /^[ -~]*$/;

/** jsonb's order of object keys (shorter first, then bytewise), so messages show keys as Postgres would. */
function jsonbKeyOrder(a: string, b: string): number {
  // Column names and event fields are ASCII, where UTF-16 code units are the bytes.
  if (PRINTABLE_ASCII.test(a) && PRINTABLE_ASCII.test(b))
    return a.length !== b.length ? a.length - b.length : byText(a, b);
  const la = Buffer.byteLength(a);
  const lb = Buffer.byteLength(b);
  return la !== lb ? la - lb : Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The value with its object keys in jsonb's order, for messages. */
function asJsonb(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(asJsonb);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort(jsonbKeyOrder)) out[key] = asJsonb((value as Row)[key]);
  return out;
}

/** Equal as jsonb: objects regardless of their keys' order. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => same(x, b[i]));
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && same((a as Row)[k], (b as Row)[k]));
}

const show = (value: unknown): string => {
  const text = JSON.stringify(asJsonb(value)) ?? "undefined";
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
};

/** "available is 3, expected 5; units_sold is 1, expected 0" for the keys that differ. */
function fieldDiff(actual: Row, expected: Row): string {
  const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])];
  return keys
    .filter((k) => !same(actual[k], expected[k]))
    .sort(jsonbKeyOrder)
    .map((k) => `${k} is ${show(actual[k])}, expected ${show(expected[k])}`)
    .join("; ");
}

/**
 * Compares expected and actual rows (both by id) and reports each row that is missing on one
 * side or differs, named by its labelColumn.
 */
function tableDiff(
  table: string,
  what: string,
  expected: Map<string, Row>,
  actual: Map<string, Row>,
  labelColumn: string,
  labelPrefix = "",
): string[] {
  const problems: string[] = [];
  for (const id of [...new Set([...expected.keys(), ...actual.keys()])].sort(byText)) {
    const e = expected.get(id);
    const a = actual.get(id);
    const label = e?.[labelColumn] ?? a?.[labelColumn];
    const name = `${table} ${what} ${id}${label ? ` (${labelPrefix}${String(label)})` : ""}`;
    if (!a) problems.push(`${name}: missing from the read table`);
    else if (!e) problems.push(`${name}: in the read table but not in the write model`);
    else {
      const diff = fieldDiff(a, e);
      if (diff) problems.push(`${name}: ${diff}`);
    }
  }
  return problems;
}

// ---------- event data, read as `data->>'key'` and a cast ----------

function isObject(value: unknown): value is Row {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** `data->'key'`: undefined when data is no object or has no such key. */
const member = (data: unknown, key: string): unknown => (isObject(data) ? data[key] : undefined);

/** `data->>'key'`: a string as it is, another value as its JSON text; null when absent or JSON null. */
function text(data: unknown, key: string): string | null {
  const value = member(data, key);
  if (value === undefined || value === null) return null;
  return typeof value === "string" ? value : JSON.stringify(value);
}

const eventName = (e: LoggedEvent): string => `write.events event ${e.position} (${e.type})`;

/** `(text)::int`. */
function int(value: string | null, where: string): number | null {
  if (value === null) return null;
  const n = /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < -2147483648 || n > 2147483647)
    throw new Error(`${where} is ${show(value)}, not an integer`);
  return n;
}

/** `(text)::uuid`, in uuid's text form (lower case, with hyphens). */
function uuid(value: string | null, where: string): string | null {
  if (value === null) return null;
  const hex = value
    .trim()
    .replace(/^\{(.*)\}$/, "$1")
    .replace(/-/g, "")
    .toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new Error(`${where} is ${show(value)}, not a uuid`);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An instant as Postgres writes a timestamptz in JSON (here always in UTC): 2026-12-02T06:45:39.97+00:00. */
const instant = (time: Date): string => time.toISOString().replace(/\.?0*Z$/, "+00:00");

/** `(text)::timestamptz(3)`. */
function timestamp(value: string | null, where: string): string | null {
  if (value === null) return null;
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new Error(`${where} is ${show(value)}, not a timestamp`);
  return instant(time);
}

/** `jsonb_array_elements(data->'key')`: none when absent; an error when not an array. */
function elements(data: unknown, key: string, where: string): unknown[] {
  const value = member(data, key);
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${where} is ${show(value)}, not an array`);
  return value;
}

// ---------- indexes over the write side ----------

function add(sums: Map<string, number>, key: string, n: number): void {
  sums.set(key, (sums.get(key) ?? 0) + n);
}

const byId = <T extends { id: string }>(rows: T[]): Map<string, T> => new Map(rows.map((r) => [r.id, r]));

/** The first OrderPlaced event (by position) of each stream. */
function firstOrderPlaced(events: LoggedEvent[]): Map<string, LoggedEvent> {
  const first = new Map<string, LoggedEvent>();
  for (const e of events) {
    if (e.type !== "OrderPlaced") continue;
    const seen = first.get(e.streamId);
    if (!seen || e.position < seen.position) first.set(e.streamId, e);
  }
  return first;
}

/** Units per product on the lines of the orders whose status passes `counts`. */
function unitsByProduct(write: WriteSide, counts: (status: string) => boolean): Map<string, number> {
  const orders = byId(write.orders);
  const units = new Map<string, number>();
  for (const line of write.lines) {
    const order = orders.get(line.orderId);
    if (order && counts(order.status)) add(units, line.productId, line.quantity);
  }
  return units;
}

// ---------- the read tables ----------

/** read.products = write.products + write.inventory + units of orders that were not cancelled. */
export function checkCatalog(write: WriteSide, rows: ProductViewRow[]): string[] {
  const inventory = new Map(write.inventory.map((i) => [i.productId, i]));
  const sold = unitsByProduct(write, (status) => status !== "CANCELLED");
  const expected = new Map<string, Row>(
    write.products.map((p) => {
      const stock = inventory.get(p.id);
      return [
        p.id,
        {
          sku: p.sku,
          name: p.name,
          description: p.description,
          price_cents: p.priceCents,
          available: stock?.available ?? null,
          in_stock: stock ? stock.available > 0 : null,
          units_sold: sold.get(p.id) ?? 0,
          row_key: uuidNumber(p.id).toString(),
        },
      ];
    }),
  );
  const actual = new Map<string, Row>(
    rows.map((r) => [
      r.id,
      {
        sku: r.sku,
        name: r.name,
        description: r.description,
        price_cents: r.priceCents,
        available: r.available,
        in_stock: r.inStock,
        units_sold: r.unitsSold,
        row_key: r.rowKey.toFixed(),
      },
    ]),
  );
  return tableDiff("read.products", "product", expected, actual, "sku");
}

/** read.catalog_counts = how many rows read.products has, and how many of them are in stock (what totalCount answers). */
export function checkCatalogCounts(
  rows: ProductViewRow[],
  counts: { products: number; inStock: number } | null,
): string[] {
  const expected = { products: rows.length, inStock: rows.filter((r) => r.inStock).length };
  const actual = counts ?? { products: 0, inStock: 0 };
  return actual.products === expected.products && actual.inStock === expected.inStock
    ? []
    : [
        `read.catalog_counts: products ${actual.products}, in stock ${actual.inStock}; read.products has ${expected.products} and ${expected.inStock}`,
      ];
}

/** The last event (by stream version) of each stream. */
function lastEvents(events: LoggedEvent[]): Map<string, LoggedEvent> {
  const last = new Map<string, LoggedEvent>();
  for (const e of events) {
    const seen = last.get(e.streamId);
    if (!seen || e.streamVersion > seen.streamVersion) last.set(e.streamId, e);
  }
  return last;
}

/** A cancelled order's reason, as its OrderCancelled event tells it. */
function reasonOf(event: LoggedEvent | undefined): string | null {
  if (event?.type !== "OrderCancelled") return null;
  const reason = text(event.data, "reason");
  return reason ?? cancellationReasonOf({}, text(member(event.metadata, "actor"), "role") ?? undefined);
}

/** read.orders = write.orders, with the lines (sku and name as placed) of the order's OrderPlaced event. */
export function checkOrders(write: WriteSide, rows: OrderViewRow[]): string[] {
  const placed = firstOrderPlaced(write.events);
  const last = lastEvents(write.events);
  const expected = new Map<string, Row>(
    write.orders.map((o) => [
      o.id,
      {
        customer_id: o.customerId,
        status: o.status,
        total_cents: o.totalCents,
        item_count: o.itemCount,
        version: o.version,
        placed_at: instant(o.placedAt),
        lines: member(placed.get(o.id)?.data, "lines") ?? null,
        expires_at: o.expiresAt && instant(o.expiresAt),
        cancellation_reason: o.status === "CANCELLED" ? reasonOf(last.get(o.id)) : null,
        row_key: uuidNumber(o.id).toString(),
      },
    ]),
  );
  const actual = new Map<string, Row>(
    rows.map((r) => [
      r.id,
      {
        customer_id: r.customerId,
        status: r.status,
        total_cents: r.totalCents,
        item_count: r.itemCount,
        version: r.version,
        placed_at: instant(r.placedAt),
        lines: r.lines,
        expires_at: r.expiresAt && instant(r.expiresAt),
        cancellation_reason: r.cancellationReason,
        row_key: r.rowKey.toFixed(),
      },
    ]),
  );
  return tableDiff("read.orders", "order", expected, actual, "customer_id", "customer ");
}

// ---------- the event log against the write tables ----------

/**
 * The write model and the event log tell the same story:
 * stock = initial + restocks − shipped, reserved = lines of PLACED/PAID orders, one creating
 * event per entity, stream versions 1..n equal to the row's version, status = last event,
 * the order as stored = its OrderPlaced event, one placeOrder key per order.
 */
export function checkEventLog(write: WriteSide, now: Date): string[] {
  return [
    ...checkStock(write),
    ...checkCreatingEvents(write),
    ...checkStreams(write),
    ...checkStatus(write),
    ...checkPlacedOrders(write),
    ...checkPaymentDeadlines(write, now),
    ...checkPlaceOrderKeys(write),
  ];
}

/** How long past its payment deadline a PLACED order may be seen before verify calls the expiry stuck. */
export const EXPIRY_GRACE_SECONDS = 60;

/**
 * A PLACED order's deadline is its OrderPlaced event's (none in any other status); no PLACED
 * order is more than EXPIRY_GRACE_SECONDS past it; an order cancelled for PAYMENT_TIMEOUT was
 * PLACED and past its deadline then. (Its stock came back: checkStock counts the reservations
 * of PLACED and PAID orders only.)
 */
function checkPaymentDeadlines(write: WriteSide, now: Date): string[] {
  const placed = firstOrderPlaced(write.events);
  const problems: string[] = [];
  for (const o of [...write.orders].sort((a, b) => byText(a.id, b.id))) {
    const event = placed.get(o.id);
    const deadline = event ? timestamp(text(event.data, "expiresAt"), `${eventName(event)}: expiresAt`) : null;
    const stored = o.expiresAt && instant(o.expiresAt);
    const expected = o.status === "PLACED" ? deadline : null;
    if (stored !== expected)
      problems.push(
        `write.orders order ${o.id}: expires_at ${stored ?? "null"}, but a ${o.status} order's is ${expected ?? "null"} (its OrderPlaced event's while PLACED)`,
      );
    if (o.status === "PLACED" && o.expiresAt && now.getTime() - o.expiresAt.getTime() > EXPIRY_GRACE_SECONDS * 1000)
      problems.push(
        `write.orders order ${o.id}: PLACED, its payment deadline passed at ${instant(o.expiresAt)}, more than ${EXPIRY_GRACE_SECONDS} s ago: the order expiry has not cancelled it`,
      );
  }
  for (const e of write.events) {
    if (e.type !== "OrderCancelled" || text(e.data, "reason") !== "PAYMENT_TIMEOUT") continue;
    const order = placed.get(e.streamId);
    const deadline = order && text(order.data, "expiresAt");
    if (text(e.data, "previousStatus") !== "PLACED" || !deadline || e.occurredAt < new Date(deadline))
      problems.push(
        `${eventName(e)}: a PAYMENT_TIMEOUT of order ${e.streamId} that was ${text(e.data, "previousStatus")}, at ${instant(e.occurredAt)}, its deadline ${deadline ?? "none"}`,
      );
  }
  return problems;
}

/** on_hand = initial stock + restocks − units shipped; reserved = units of PLACED/PAID orders. */
function checkStock(write: WriteSide): string[] {
  const onHand = new Map<string, number>();
  for (const e of write.events) {
    if (e.type === "ProductCreated") {
      add(onHand, e.streamId, int(text(e.data, "initialStock"), `${eventName(e)}: initialStock`) ?? 0);
    } else if (e.type === "StockAdjusted") {
      add(onHand, e.streamId, int(text(e.data, "delta"), `${eventName(e)}: delta`) ?? 0);
    } else if (e.type === "OrderShipped") {
      for (const line of elements(e.data, "lines", `${eventName(e)}: lines`)) {
        const productId = uuid(text(line, "productId"), `${eventName(e)}: a line's productId`);
        const quantity = int(text(line, "quantity"), `${eventName(e)}: a line's quantity`);
        if (productId !== null && quantity !== null) add(onHand, productId, -quantity);
      }
    }
  }
  const reserved = unitsByProduct(write, (status) => status === "PLACED" || status === "PAID");
  const inventory = new Map(write.inventory.map((i) => [i.productId, i]));
  const problems: string[] = [];
  for (const p of [...write.products].sort((a, b) => byText(a.id, b.id))) {
    const stock = inventory.get(p.id);
    if (!stock) {
      problems.push(`write.inventory product ${p.id} (${p.sku}): no inventory row`);
      continue;
    }
    const expectedOnHand = onHand.get(p.id) ?? 0;
    const expectedReserved = reserved.get(p.id) ?? 0;
    const found = { on_hand: stock.onHand, reserved: stock.reserved, available: stock.available };
    const expected = {
      on_hand: expectedOnHand,
      reserved: expectedReserved,
      available: expectedOnHand - expectedReserved,
    };
    const diff = fieldDiff(found, expected);
    if (diff)
      problems.push(`write.inventory product ${p.id} (${p.sku}): ${diff} (from the event log and the open orders)`);
  }
  return problems;
}

/** Exactly one creating event per entity, naming that entity, and none without its row. */
function checkCreatingEvents(write: WriteSide): string[] {
  const kinds = [
    { kind: "order", event: "OrderPlaced", idKey: "orderId", ids: write.orders.map((o) => o.id) },
    { kind: "product", event: "ProductCreated", idKey: "productId", ids: write.products.map((p) => p.id) },
  ];
  const problems: string[] = [];
  const orphans: string[] = [];
  for (const { kind, event, idKey, ids } of kinds) {
    const rows = new Set(ids);
    const naming = new Map<string, number>();
    const without = new Map<string, number>();
    for (const e of write.events) {
      if (e.type !== event) continue;
      if (text(e.data, idKey) === e.streamId) add(naming, e.streamId, 1);
      if (!rows.has(e.streamId)) add(without, e.streamId, 1);
    }
    for (const id of [...ids].sort(byText)) {
      const n = naming.get(id) ?? 0;
      if (n !== 1) problems.push(`write.events: ${kind} ${id} has ${n} ${event} events naming it, expected exactly 1`);
    }
    for (const [id, n] of [...without].sort(([a], [b]) => byText(a, b)))
      orphans.push(`write.events: ${n} ${event} event(s) for ${kind} ${id}, which is not in write.${kind}s`);
  }
  return [...problems, ...orphans];
}

/** Stream versions: 1..n without gaps, one stream type, and n = the version of the row. */
function checkStreams(write: WriteSide): string[] {
  const products = byId(write.products);
  const orders = byId(write.orders);
  const streams = new Map<
    string,
    { types: Set<string>; events: number; lo: number; hi: number; product: number | null; order: number | null }
  >();
  for (const e of write.events) {
    let s = streams.get(e.streamId);
    if (!s) {
      s = { types: new Set(), events: 0, lo: e.streamVersion, hi: e.streamVersion, product: null, order: null };
      streams.set(e.streamId, s);
    }
    s.types.add(e.streamType);
    s.events += 1;
    s.lo = Math.min(s.lo, e.streamVersion);
    s.hi = Math.max(s.hi, e.streamVersion);
    // The row of the stream's type: a product stream's version is the product's, an order's the order's.
    if (e.streamType === "product") s.product = products.get(e.streamId)?.version ?? s.product;
    if (e.streamType === "order") s.order = orders.get(e.streamId)?.version ?? s.order;
  }
  const problems: string[] = [];
  for (const [id, s] of [...streams].sort(([a], [b]) => byText(a, b))) {
    const rowVersion = s.product ?? s.order;
    const mixed = s.types.size > 1;
    if (s.lo === 1 && s.hi === s.events && !mixed && rowVersion === s.hi) continue;
    const name = `write.events stream ${id} (${[...s.types].sort(byText).join(",")})`;
    if (mixed) problems.push(`${name}: events of more than one stream type`);
    if (s.lo !== 1 || s.hi !== s.events)
      problems.push(
        `${name}: versions ${s.lo}..${s.hi} over ${s.events} events (expected 1..${s.events} without gaps)`,
      );
    if (rowVersion === null) {
      if (!mixed) problems.push(`${name}: no write row for this stream`);
    } else if (rowVersion !== s.hi)
      problems.push(`${name}: last event is version ${s.hi}, the write row has version ${rowVersion}`);
  }
  return problems;
}

const STATUS_AFTER = new Map([
  ["OrderPlaced", "PLACED"],
  ["OrderPaid", "PAID"],
  ["OrderShipped", "SHIPPED"],
  ["OrderCancelled", "CANCELLED"],
]);

/** An order's status is the one its last event (by stream version) leaves it in. */
function checkStatus(write: WriteSide): string[] {
  const last = lastEvents(write.events);
  const problems: string[] = [];
  for (const o of [...write.orders].sort((a, b) => byText(a.id, b.id))) {
    const type = last.get(o.id)?.type ?? null;
    if ((type === null ? undefined : STATUS_AFTER.get(type)) !== o.status)
      problems.push(`write.orders order ${o.id}: status ${o.status}, but its last event is ${type ?? "(none)"}`);
  }
  return problems;
}

/** The order as stored agrees with its OrderPlaced event and with its own lines. */
function checkPlacedOrders(write: WriteSide): string[] {
  const placed = firstOrderPlaced(write.events);
  const linesOf = new Map<string, WriteOrderLine[]>();
  for (const line of write.lines) {
    const lines = linesOf.get(line.orderId);
    if (lines) lines.push(line);
    else linesOf.set(line.orderId, [line]);
  }
  const problems: string[] = [];
  for (const o of [...write.orders].sort((a, b) => byText(a.id, b.id))) {
    const event = placed.get(o.id);
    if (!event) continue;
    const lines = (linesOf.get(o.id) ?? []).sort((a, b) => a.lineNo - b.lineNo);
    const stored = {
      customer_id: o.customerId,
      total_cents: o.totalCents,
      item_count: o.itemCount,
      placed_at: instant(o.placedAt),
      ...lineSums(
        lines.map((l) => ({ productId: l.productId, quantity: l.quantity, unitPriceCents: l.unitPriceCents })),
      ),
    };
    const where = eventName(event);
    const eventLines = elements(event.data, "lines", `${where}: lines`).map((x) => ({
      productId: text(x, "productId"),
      quantity: int(text(x, "quantity"), `${where}: a line's quantity`),
      unitPriceCents: int(text(x, "unitPriceCents"), `${where}: a line's unitPriceCents`),
    }));
    const fromEvent = {
      customer_id: text(event.data, "customerId"),
      total_cents: int(text(event.data, "totalCents"), `${where}: totalCents`),
      item_count: int(text(event.data, "itemCount"), `${where}: itemCount`),
      placed_at: timestamp(text(event.data, "placedAt"), `${where}: placedAt`),
      ...lineSums(eventLines),
    };
    const diff = fieldDiff(stored, fromEvent);
    if (diff || stored.total_cents !== stored.lines_total_cents || stored.item_count !== stored.lines_item_count)
      problems.push(
        `write.orders order ${o.id}: ${diff || "total_cents/item_count differ from the sum of its lines"} (vs. its OrderPlaced event)`,
      );
  }
  return problems;
}

interface Line {
  productId: string | null;
  quantity: number | null;
  unitPriceCents: number | null;
}

/** The lines and their sums, each null when there is nothing to sum (as SQL's aggregates are). */
function lineSums(lines: Line[]): {
  lines: Line[] | null;
  lines_total_cents: number | null;
  lines_item_count: number | null;
} {
  let total: number | null = null;
  let count: number | null = null;
  for (const { quantity, unitPriceCents } of lines) {
    if (quantity !== null && unitPriceCents !== null) total = (total ?? 0) + quantity * unitPriceCents;
    if (quantity !== null) count = (count ?? 0) + quantity;
  }
  return { lines: lines.length > 0 ? lines : null, lines_total_cents: total, lines_item_count: count };
}

/**
 * Every placeOrder key's transaction placed an order of its customer; every order was placed
 * under one key. (A key remembers its transaction; the transaction's events say what it did.)
 */
function checkPlaceOrderKeys(write: WriteSide): string[] {
  const orders = byId(write.orders);
  const keysPerOrder = new Map<string, number>();
  const problems: string[] = [];
  for (const { actorId, key, orderIds } of write.placeOrderKeys) {
    for (const orderId of orderIds.length > 0 ? orderIds : [null]) {
      const order = orderId === null ? undefined : orders.get(orderId);
      if (orderId !== null) add(keysPerOrder, orderId, 1);
      if (order?.customerId === actorId) continue;
      const what =
        orderId === null ? "was never placed" : !order ? "does not exist" : `belongs to customer ${order.customerId}`;
      problems.push(`write.command_keys (${actorId}, placeOrder, ${key}): order ${orderId ?? ""} ${what}`);
    }
  }
  for (const o of write.orders) {
    const n = keysPerOrder.get(o.id) ?? 0;
    if (n !== 1) problems.push(`write.orders order ${o.id}: placed under ${n} idempotency keys, expected 1`);
  }
  return problems.sort(byText);
}

export interface Counts {
  products: number;
  orders: number;
  events: number;
}

export function countAll(write: WriteSide): Counts {
  return { products: write.products.length, orders: write.orders.length, events: write.events.length };
}
