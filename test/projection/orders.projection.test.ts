import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sql } from "../../src/db/sql";
import type { CancellationReason, OrderPlaced, OrderStatus } from "../../src/events";
import { ordersProjection } from "../../src/projection/projections/orders.projection";
import type { EventMetadata, RecordedEvent } from "../../src/shared/events";
import { embeddedDatabase, eventInStream, type EventPlace, projectionSpec } from "../support/projectionSpec";

const database = embeddedDatabase();
const { given } = projectionSpec(ordersProjection, database);

const EXPIRES_AT = "2026-12-01T09:45:00.000Z";
const CUP = { productId: randomUUID(), sku: "CUP-1", name: "Espresso cup", unitPriceCents: 1250 };
const SAUCER = { productId: randomUUID(), sku: "SAU-1", name: "Saucer", unitPriceCents: 400 };

function orderPlaced(customerId = "alice") {
  const orderId = randomUUID();
  return eventInStream(orderId, {
    type: "OrderPlaced",
    data: {
      orderId,
      customerId,
      lines: [
        { ...CUP, quantity: 2 },
        { ...SAUCER, quantity: 1 },
      ],
      totalCents: 2 * 1250 + 400,
      itemCount: 3,
      placedAt: "2026-12-01T09:30:00.000Z",
      expiresAt: EXPIRES_AT,
    },
  });
}

const ids = (order: RecordedEvent<OrderPlaced>) => ({
  orderId: order.data.orderId,
  customerId: order.data.customerId,
});

const orderPaid = (order: RecordedEvent<OrderPlaced>, place?: EventPlace) =>
  eventInStream(order.streamId, { type: "OrderPaid", data: ids(order) }, place);

const orderShipped = (order: RecordedEvent<OrderPlaced>) =>
  eventInStream(order.streamId, {
    type: "OrderShipped",
    data: { ...ids(order), lines: order.data.lines.map(({ productId, quantity }) => ({ productId, quantity })) },
  });

const orderCancelled = (
  order: RecordedEvent<OrderPlaced>,
  reason: CancellationReason | null = "CUSTOMER", // null: an event from before reasons were recorded
  place?: EventPlace,
) =>
  eventInStream(
    order.streamId,
    {
      type: "OrderCancelled",
      data: {
        ...ids(order),
        previousStatus: "PLACED",
        lines: order.data.lines.map(({ productId, quantity }) => ({ productId, quantity })),
        ...(reason ? { reason } : {}),
      },
    },
    place,
  );

/** The row of a placed order once `last` (the latest event applied to it) made it `status`. */
function orderRow(placed: RecordedEvent<OrderPlaced>, status: OrderStatus, last: RecordedEvent = placed) {
  return {
    expires_at: status === "PLACED" && placed.data.expiresAt ? new Date(placed.data.expiresAt) : null,
    cancellation_reason: last.type === "OrderCancelled" ? (last.data as { reason?: string }).reason : null,
    applied_tx: last.txId.toString(),
    applied_pos: last.position.toString(),
    id: placed.data.orderId,
    customer_id: placed.data.customerId,
    status,
    total_cents: placed.data.totalCents,
    item_count: placed.data.itemCount,
    lines: placed.data.lines,
    placed_at: new Date(placed.data.placedAt),
    updated_at: last.occurredAt,
    version: last.streamVersion,
  };
}

describe("the orders projection", () => {
  it("shows a placed order with its lines as they were placed and its totals", async () => {
    const placed = orderPlaced();
    await given([placed]).then([
      {
        id: placed.data.orderId,
        customer_id: "alice",
        status: "PLACED",
        total_cents: 2900,
        item_count: 3,
        lines: [
          { productId: CUP.productId, sku: "CUP-1", name: "Espresso cup", quantity: 2, unitPriceCents: 1250 },
          { productId: SAUCER.productId, sku: "SAU-1", name: "Saucer", quantity: 1, unitPriceCents: 400 },
        ],
        placed_at: new Date("2026-12-01T09:30:00.000Z"),
        updated_at: placed.occurredAt,
        version: 1,
        expires_at: new Date(EXPIRES_AT),
        cancellation_reason: null,
        applied_tx: placed.txId.toString(),
        applied_pos: placed.position.toString(),
      },
    ]);
  });

  it("shows an order placed before payment deadlines existed without one", async () => {
    const placed = orderPlaced();
    delete (placed.data as { expiresAt?: string }).expiresAt;
    await given([placed]).then([{ ...orderRow(placed, "PLACED"), expires_at: null }]);
  });

  it("shows why an order was cancelled: the reason recorded, or for older events the actor's role", async () => {
    const [expired, byAdmin, byCustomer] = [orderPlaced(), orderPlaced(), orderPlaced()];
    const admin: EventMetadata = {
      correlationId: "c",
      causationId: null,
      actor: { id: "ops", role: "admin" },
      command: "cancelOrder",
    };
    const timeout = orderCancelled(expired, "PAYMENT_TIMEOUT");
    const oldAdmin = orderCancelled(byAdmin, null, { metadata: admin });
    const oldCustomer = orderCancelled(byCustomer, null);
    await given([expired, byAdmin, byCustomer, timeout, oldAdmin, oldCustomer]).then([
      { ...orderRow(expired, "CANCELLED", timeout), cancellation_reason: "PAYMENT_TIMEOUT" },
      { ...orderRow(byAdmin, "CANCELLED", oldAdmin), cancellation_reason: "ADMIN" },
      { ...orderRow(byCustomer, "CANCELLED", oldCustomer), cancellation_reason: "CUSTOMER" },
    ]);
  });

  it("shows an order as paid once it is paid", async () => {
    const placed = orderPlaced();
    const paid = orderPaid(placed);
    await given([placed])
      .and([paid])
      .then([{ ...orderRow(placed, "PAID", paid), version: 2 }]);
  });

  it("shows an order as shipped once it is shipped", async () => {
    const placed = orderPlaced();
    const paid = orderPaid(placed);
    const shipped = orderShipped(placed);
    await given([placed])
      .and([paid])
      .and([shipped])
      .then([{ ...orderRow(placed, "SHIPPED", shipped), version: 3 }]);
  });

  it("shows an order as cancelled once it is cancelled", async () => {
    const placed = orderPlaced();
    const cancelled = orderCancelled(placed);
    await given([placed])
      .and([cancelled])
      .then([{ ...orderRow(placed, "CANCELLED", cancelled), version: 2 }]);
  });

  it("keeps the newer status when an older change arrives after it", async () => {
    const placed = orderPlaced();
    const paid = orderPaid(placed);
    const shipped = orderShipped(placed);
    const stale = orderPaid(placed, { streamVersion: 2 }); // delivered again, after the shipping
    const spec = given([placed]).and([paid, shipped]).and([stale]);
    await spec.then([{ ...orderRow(placed, "SHIPPED", shipped), version: 3 }]);
    await spec.thenLastBatchChangesNothing();
  });

  it("keeps the newer status when an older change comes later in the same batch", async () => {
    const placed = orderPlaced();
    const paid = orderPaid(placed);
    const shipped = orderShipped(placed);
    const stale = orderPaid(placed, { streamVersion: 2 });
    await given([placed, paid, shipped, stale]).then([{ ...orderRow(placed, "SHIPPED", shipped), version: 3 }]);
  });

  it("shows an order placed and paid in one batch as paid", async () => {
    const placed = orderPlaced();
    const paid = orderPaid(placed);
    const spec = given([placed, paid]);
    await spec.then([orderRow(placed, "PAID", paid)]);
    await spec.thenChanges([{ table: "orders", ids: [placed.data.orderId] }]);
  });

  it("writes an order placed and changed in one batch once, leaving no dead row version behind", async () => {
    // Inserted and then updated, the row would be the second version on the page: (0,2).
    const placed = orderPlaced();
    const cancelled = orderCancelled(placed);
    await given([placed, cancelled]).then([orderRow(placed, "CANCELLED", cancelled)]);
    const rows = await database().sql.query<{ ctid: string }>(sql`SELECT ctid::text AS ctid FROM "read"."orders"`);
    expect(rows).toEqual([{ ctid: "(0,1)" }]);
  });

  it("applies the changes of a batch that places an order again, once it is already there", async () => {
    const placed = orderPlaced();
    const paid = orderPaid(placed);
    const spec = given([placed]).and([placed, paid]);
    await spec.then([orderRow(placed, "PAID", paid)]);
    await spec.thenChanges([
      { table: "orders", ids: [placed.data.orderId] },
      { table: "orders", ids: [placed.data.orderId] },
    ]);
  });

  it("shows an order delivered twice in one batch once", async () => {
    const placed = orderPlaced();
    const paid = orderPaid(placed);
    await given([placed, placed, paid, paid]).then([orderRow(placed, "PAID", paid)]);
  });

  it("changes nothing when a batch is replayed", async () => {
    const placed = orderPlaced();
    const paid = orderPaid(placed);
    const spec = given([placed, paid]).and([placed, paid]);
    await spec.then([orderRow(placed, "PAID", paid)]);
    await spec.thenLastBatchChangesNothing();
  });

  it("changes nothing when a status change is replayed", async () => {
    const placed = orderPlaced();
    const shipped = [orderPaid(placed), orderShipped(placed)];
    await given([placed]).and(shipped).and(shipped).thenLastBatchChangesNothing();
  });

  it("changes each order of a batch that changes many, as a rebuild's or a catch-up's does", async () => {
    // Past a few orders the update lists them another way (unnest, planned for their count).
    const placed = Array.from({ length: 40 }, (_, i) => orderPlaced(`customer-${i}`));
    const changed = placed.map((order, i) => (i % 2 === 0 ? orderPaid(order) : orderCancelled(order)));
    await given(placed)
      .and(changed)
      .then(
        placed.map((order, i) => ({
          ...orderRow(order, i % 2 === 0 ? "PAID" : "CANCELLED", changed[i]!),
          version: 2,
        })),
      );
  });

  it("keeps the orders of one batch apart", async () => {
    const alices = orderPlaced("alice");
    const bobs = orderPlaced("bob");
    const paid = orderPaid(alices);
    const cancelled = orderCancelled(bobs);
    await given([alices, bobs, paid, cancelled]).then([
      orderRow(alices, "PAID", paid),
      orderRow(bobs, "CANCELLED", cancelled),
    ]);
  });
});
