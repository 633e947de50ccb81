import type { Prisma } from "../generated/prisma/client";

// What verify reads, one function per side: the write side (the write model and the event log)
// and the read side (the read tables and the projection checkpoints). Nothing here joins the two
// sides, so each can be read from its own database; src/verify/checks.ts compares them in memory.
// Only the columns the checks use are read.

/** A PrismaClient, or the client of one of its interactive transactions (a snapshot). */
export type Reader = Prisma.TransactionClient;

const PRODUCT = {
  id: true,
  sku: true,
  name: true,
  description: true,
  priceCents: true,
  version: true,
} as const satisfies Prisma.ProductSelect;
const INVENTORY = {
  productId: true,
  onHand: true,
  reserved: true,
  available: true,
} as const satisfies Prisma.InventorySelect;
const ORDER = {
  id: true,
  customerId: true,
  status: true,
  totalCents: true,
  itemCount: true,
  version: true,
  placedAt: true,
  expiresAt: true,
} as const satisfies Prisma.OrderSelect;
const ORDER_LINE = {
  orderId: true,
  lineNo: true,
  productId: true,
  quantity: true,
  unitPriceCents: true,
} as const satisfies Prisma.OrderLineSelect;
const EVENT = {
  position: true,
  streamId: true,
  streamType: true,
  streamVersion: true,
  type: true,
  data: true,
  metadata: true,
  occurredAt: true,
} as const satisfies Prisma.EventSelect;
const PRODUCT_VIEW = {
  id: true,
  sku: true,
  name: true,
  description: true,
  priceCents: true,
  available: true,
  inStock: true,
  unitsSold: true,
  rowKey: true,
} as const satisfies Prisma.ProductViewSelect;
const ORDER_VIEW = {
  id: true,
  customerId: true,
  status: true,
  totalCents: true,
  itemCount: true,
  version: true,
  placedAt: true,
  lines: true,
  expiresAt: true,
  cancellationReason: true,
  rowKey: true,
} as const satisfies Prisma.OrderViewSelect;

export type WriteProduct = Prisma.ProductGetPayload<{ select: typeof PRODUCT }>;
export type WriteInventory = Prisma.InventoryGetPayload<{ select: typeof INVENTORY }>;
export type WriteOrder = Prisma.OrderGetPayload<{ select: typeof ORDER }>;
export type WriteOrderLine = Prisma.OrderLineGetPayload<{ select: typeof ORDER_LINE }>;
export type LoggedEvent = Prisma.EventGetPayload<{ select: typeof EVENT }>;
export type ProductViewRow = Prisma.ProductViewGetPayload<{ select: typeof PRODUCT_VIEW }>;
export type OrderViewRow = Prisma.OrderViewGetPayload<{ select: typeof ORDER_VIEW }>;

/** A placeOrder idempotency key and the orders its transaction placed (the OrderPlaced events it appended). */
export interface PlaceOrderKey {
  actorId: string;
  key: string;
  orderIds: string[];
}

/** The write model and the event log, as of one snapshot of the write database. */
export interface WriteSide {
  products: WriteProduct[];
  inventory: WriteInventory[];
  orders: WriteOrder[];
  lines: WriteOrderLine[];
  events: LoggedEvent[];
  placeOrderKeys: PlaceOrderKey[];
}

/** A projection's checkpoint; txId is an xid8 as text. */
export interface Checkpoint {
  name: string;
  txId: string;
  position: bigint;
  status: string;
  lastError: string | null;
}

// ---------- write side ----------

export async function hasWriteTables(db: Reader): Promise<boolean> {
  const [row] = await db.$queryRaw<{ ok: boolean }[]>`SELECT to_regclass('"write".events') IS NOT NULL AS ok`;
  return row?.ok === true;
}

/** Events committed after a checkpoint (all of them without one), in the projector's (tx_id, position) order. */
export async function countEventsAfter(
  db: Reader,
  after: Pick<Checkpoint, "txId" | "position"> | null,
): Promise<number> {
  const [row] = after
    ? await db.$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM "write".events
         WHERE (tx_id, position) > (${after.txId}::xid8, ${after.position}::int8)`
    : await db.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM "write".events`;
  return row?.n ?? 0;
}

/** Whole tables: verify is an operator's cold path, and the checks need every row. */
export async function readWriteSide(db: Reader): Promise<WriteSide> {
  // One after another: a transaction is one connection.
  const products = await db.product.findMany({ select: PRODUCT });
  const inventory = await db.inventory.findMany({ select: INVENTORY });
  const orders = await db.order.findMany({ select: ORDER });
  const lines = await db.orderLine.findMany({ select: ORDER_LINE });
  const events = await db.event.findMany({ select: EVENT });
  // tx_id is an xid8, which Prisma's models cannot read: raw queries, joined here by its text.
  const keys = await db.$queryRaw<{ actor_id: string; key: string; tx_id: string }[]>`
    SELECT actor_id, key, tx_id::text AS tx_id FROM "write".command_keys WHERE command = 'placeOrder'`;
  const placed = await db.$queryRaw<{ tx_id: string; stream_id: string }[]>`
    SELECT tx_id::text AS tx_id, stream_id::text AS stream_id FROM "write".events WHERE type = 'OrderPlaced'`;
  const placedByTx = new Map<string, string[]>();
  for (const p of placed) {
    const ids = placedByTx.get(p.tx_id);
    if (ids) ids.push(p.stream_id);
    else placedByTx.set(p.tx_id, [p.stream_id]);
  }
  const placeOrderKeys = keys.map((k) => ({
    actorId: k.actor_id,
    key: k.key,
    orderIds: placedByTx.get(k.tx_id) ?? [],
  }));
  return { products, inventory, orders, lines, events, placeOrderKeys };
}

// ---------- read side ----------

export async function hasReadTables(db: Reader): Promise<boolean> {
  const [row] = await db.$queryRaw<
    { ok: boolean }[]
  >`SELECT to_regclass('"read".projection_checkpoints') IS NOT NULL AS ok`;
  return row?.ok === true;
}

export async function readCheckpoints(db: Reader): Promise<Checkpoint[]> {
  // tx_id is an xid8, which Prisma's models cannot read.
  const rows = await db.$queryRaw<
    { name: string; tx_id: string; position: bigint; status: string; last_error: string | null }[]
  >`SELECT name, tx_id::text AS tx_id, position, status, last_error FROM "read".projection_checkpoints`;
  return rows.map((r) => ({
    name: r.name,
    txId: r.tx_id,
    position: BigInt(r.position),
    status: r.status,
    lastError: r.last_error,
  }));
}

export async function readCatalogRows(db: Reader): Promise<ProductViewRow[]> {
  return db.productView.findMany({ select: PRODUCT_VIEW });
}

/** read.catalog_counts' one row (none before the catalog projection's first product). */
export async function readCatalogCounts(db: Reader): Promise<{ products: number; inStock: number } | null> {
  return db.catalogCounts.findFirst({ select: { products: true, inStock: true } });
}

export async function readOrderRows(db: Reader): Promise<OrderViewRow[]> {
  return db.orderView.findMany({ select: ORDER_VIEW });
}
