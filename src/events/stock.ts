import type { DomainEvent } from "./index";

/**
 * How an event moves one product's stock. The write model applies onHand, reserved and available
 * to write.inventory; the catalog projection applies available and sold to read.products. Both
 * take them from here, so the two sides cannot disagree on the arithmetic.
 */
export interface StockMove {
  productId: string;
  onHand: number;
  reserved: number;
  available: number;
  /** Units in orders that were not cancelled. */
  sold: number;
}

const move = (productId: string, onHand: number, reserved: number, sold: number): StockMove => ({
  productId,
  onHand,
  reserved,
  available: onHand - reserved,
  sold,
});

/** The stock moves of an event, one per product it touches (none for most events). */
export function stockMoves(event: DomainEvent): StockMove[] {
  switch (event.type) {
    case "ProductCreated": // its first stock is part of the new row, not a move
    case "OrderPaid":
      return [];
    case "StockAdjusted":
      return [move(event.data.productId, event.data.delta, 0, 0)];
    case "OrderPlaced": // reserved for the order
      return event.data.lines.map((l) => move(l.productId, 0, l.quantity, l.quantity));
    case "OrderCancelled": // the reservation released
      return event.data.lines.map((l) => move(l.productId, 0, -l.quantity, -l.quantity));
    case "OrderShipped": // the reserved units leave the warehouse
      return event.data.lines.map((l) => move(l.productId, -l.quantity, -l.quantity, 0));
  }
}
