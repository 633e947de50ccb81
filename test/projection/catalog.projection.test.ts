import { randomUUID } from "node:crypto";
import { describe, it } from "vitest";
import type { OrderPlaced, ProductCreated } from "../../src/events";
import { catalogProjection } from "../../src/projection/projections/catalog.projection";
import type { RecordedEvent } from "../../src/shared/events";
import { embeddedDatabase, eventInStream, projectionSpec, type Given, type Row } from "../support/projectionSpec";

const spec = projectionSpec(catalogProjection, embeddedDatabase());

/**
 * given(events).then(productRows): the products hold exactly these rows, and the counts kept
 * with them (read.catalog_counts) say how many there are and how many are in stock.
 */
function given(...batches: RecordedEvent[][]): Omit<Given<"products" | "counts">, "then"> & {
  then(products: Row[]): Promise<void>;
} {
  const inner = spec.given(...batches);
  return {
    and: (batch) => given(...batches, batch),
    then: (products) =>
      inner.then({
        products,
        counts: [{ id: true, products: products.length, in_stock: products.filter((p) => p.in_stock === true).length }],
      }),
    thenChanges: (expected) => inner.thenChanges(expected),
    thenLastBatchChangesNothing: () => inner.thenLastBatchChangesNothing(),
  };
}

function productCreated(initialStock: number) {
  const productId = randomUUID();
  return eventInStream(productId, {
    type: "ProductCreated",
    data: {
      productId,
      sku: `CUP-${productId.slice(0, 8)}`,
      name: "Espresso cup",
      description: "Stoneware, 90 ml",
      priceCents: 1250,
      initialStock,
    },
  });
}

function restocked(product: RecordedEvent<ProductCreated>, delta: number) {
  return eventInStream(product.streamId, {
    type: "StockAdjusted",
    data: { productId: product.streamId, delta, reason: "restock" },
  });
}

function orderPlaced(...lines: [product: RecordedEvent<ProductCreated>, quantity: number][]) {
  const orderId = randomUUID();
  const placed = lines.map(([{ data }, quantity]) => ({
    productId: data.productId,
    sku: data.sku,
    name: data.name,
    quantity,
    unitPriceCents: data.priceCents,
  }));
  return eventInStream(orderId, {
    type: "OrderPlaced",
    data: {
      orderId,
      customerId: "alice",
      lines: placed,
      totalCents: placed.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0),
      itemCount: placed.reduce((sum, l) => sum + l.quantity, 0),
      placedAt: "2026-12-01T00:00:00.000Z", // the command's clock: the catalog does not read it
    },
  });
}

function orderCancelled(order: RecordedEvent<OrderPlaced>) {
  return eventInStream(order.streamId, {
    type: "OrderCancelled",
    data: {
      orderId: order.data.orderId,
      customerId: order.data.customerId,
      previousStatus: "PLACED",
      lines: order.data.lines.map(({ productId, quantity }) => ({ productId, quantity })),
    },
  });
}

function orderPaid(order: RecordedEvent<OrderPlaced>) {
  return eventInStream(order.streamId, {
    type: "OrderPaid",
    data: { orderId: order.data.orderId, customerId: order.data.customerId },
  });
}

function orderShipped(order: RecordedEvent<OrderPlaced>) {
  return eventInStream(order.streamId, {
    type: "OrderShipped",
    data: {
      orderId: order.data.orderId,
      customerId: order.data.customerId,
      lines: order.data.lines.map(({ productId, quantity }) => ({ productId, quantity })),
    },
  });
}

/** The row of a created product once `last` (the latest event that touched it) is applied. */
function productRow(
  created: RecordedEvent<ProductCreated>,
  now: { available: number; inStock: boolean; unitsSold: number; last: RecordedEvent },
) {
  return {
    id: created.data.productId,
    sku: created.data.sku,
    name: created.data.name,
    description: created.data.description,
    price_cents: created.data.priceCents,
    available: now.available,
    in_stock: now.inStock,
    units_sold: now.unitsSold,
    created_at: created.occurredAt,
    updated_at: now.last.occurredAt,
    applied_tx: now.last.txId.toString(),
    applied_pos: now.last.position.toString(),
  };
}

describe("the catalog projection", () => {
  it("shows a new product with its initial stock, nothing sold, and the event it came from", async () => {
    const created = productCreated(10);
    await given([created]).then([
      {
        id: created.data.productId,
        sku: created.data.sku,
        name: "Espresso cup",
        description: "Stoneware, 90 ml",
        price_cents: 1250,
        available: 10,
        in_stock: true,
        units_sold: 0,
        created_at: created.occurredAt,
        updated_at: created.occurredAt,
        applied_tx: created.txId.toString(),
        applied_pos: created.position.toString(),
      },
    ]);
  });

  it("shows a product created without stock as out of stock", async () => {
    const created = productCreated(0);
    await given([created]).then([productRow(created, { available: 0, inStock: false, unitsSold: 0, last: created })]);
  });

  it("adds a restock to what is available", async () => {
    const created = productCreated(0);
    const restock = restocked(created, 5);
    await given([created])
      .and([restock])
      .then([productRow(created, { available: 5, inStock: true, unitsSold: 0, last: restock })]);
  });

  it("lowers available and raises unitsSold when an order is placed", async () => {
    const created = productCreated(10);
    const order = orderPlaced([created, 3]);
    await given([created])
      .and([order])
      .then([productRow(created, { available: 7, inStock: true, unitsSold: 3, last: order })]);
  });

  it("shows a product as out of stock once an order takes its last units", async () => {
    const created = productCreated(2);
    const order = orderPlaced([created, 2]);
    await given([created])
      .and([order])
      .then([productRow(created, { available: 0, inStock: false, unitsSold: 2, last: order })]);
  });

  it("moves every product of an order by its own line", async () => {
    const cup = productCreated(10);
    const saucer = productCreated(4);
    const order = orderPlaced([cup, 1], [saucer, 4]);
    await given([cup, saucer])
      .and([order])
      .then([
        productRow(cup, { available: 9, inStock: true, unitsSold: 1, last: order }),
        productRow(saucer, { available: 0, inStock: false, unitsSold: 4, last: order }),
      ]);
  });

  it("moves each product of a batch that moves many, as a rebuild's or a catch-up's does", async () => {
    // Past a few products the update lists them another way (unnest, planned for their count).
    const products = Array.from({ length: 40 }, (_, i) => productCreated(i % 2 === 0 ? 3 : 10));
    const orders = products.map((p) => orderPlaced([p, 3]));
    await given(products)
      .and(orders)
      .then(
        products.map((p, i) =>
          productRow(p, {
            available: p.data.initialStock - 3,
            inStock: p.data.initialStock > 3,
            unitsSold: 3,
            last: orders[i]!,
          }),
        ),
      );
  });

  it("gives the units back when an order is cancelled", async () => {
    const created = productCreated(2);
    const order = orderPlaced([created, 2]);
    const cancelled = orderCancelled(order);
    await given([created])
      .and([order])
      .and([cancelled])
      .then([productRow(created, { available: 2, inStock: true, unitsSold: 0, last: cancelled })]);
  });

  it("leaves the product alone when an order is paid or shipped", async () => {
    const created = productCreated(10);
    const order = orderPlaced([created, 3]);
    const spec = given([created, order]).and([orderPaid(order), orderShipped(order)]);
    await spec.then([productRow(created, { available: 7, inStock: true, unitsSold: 3, last: order })]);
    await spec.thenLastBatchChangesNothing();
  });

  it("adds up the events of one product across batches", async () => {
    const created = productCreated(5);
    const first = orderPlaced([created, 2]);
    const restock = restocked(created, 10);
    const second = orderPlaced([created, 4]);
    const cancelled = orderCancelled(first);
    await given([created])
      .and([first])
      .and([restock, second])
      .and([cancelled])
      .then([productRow(created, { available: 11, inStock: true, unitsSold: 4, last: cancelled })]);
  });

  it("shows a product created and restocked in one batch with both", async () => {
    const created = productCreated(3);
    const restock = restocked(created, 7);
    const order = orderPlaced([created, 4]);
    const spec = given([created, restock, order]);
    await spec.then([productRow(created, { available: 6, inStock: true, unitsSold: 4, last: order })]);
    await spec.thenChanges([{ table: "products", ids: [created.data.productId] }]);
  });

  it("changes nothing when a batch of stock moves is replayed", async () => {
    const created = productCreated(10);
    const order = orderPlaced([created, 3]);
    const restock = restocked(created, 2);
    const spec = given([created]).and([order, restock]).and([order, restock]);
    await spec.then([productRow(created, { available: 9, inStock: true, unitsSold: 3, last: restock })]);
    await spec.thenLastBatchChangesNothing();
  });

  it("changes nothing when a batch that created the product is replayed", async () => {
    const created = productCreated(10);
    const restock = restocked(created, 5);
    const spec = given([created, restock]).and([created, restock]);
    await spec.then([productRow(created, { available: 15, inStock: true, unitsSold: 0, last: restock })]);
    await spec.thenLastBatchChangesNothing();
  });

  it("announces the products a batch changed, each once", async () => {
    const cup = productCreated(10);
    const saucer = productCreated(10);
    const order = orderPlaced([cup, 1], [saucer, 1]);
    await given([cup, saucer])
      .and([order, restocked(cup, 1), orderPaid(order)])
      .thenChanges([
        { table: "products", ids: [cup.data.productId, saucer.data.productId] },
        // Only stock moves: the rows existed, and nothing decides a page's members or order changed (catalogCache.ts).
        {
          table: "products",
          ids: [cup.data.productId, saucer.data.productId],
          updated: ["available", "in_stock", "units_sold", "updated_at", "applied_tx", "applied_pos"],
        },
      ]);
  });
});
