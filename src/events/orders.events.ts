/** Events of the order stream (stream type "order"). Versioned facts: add new types, never change old ones. */

/** An order's life: PLACED → PAID → SHIPPED, or CANCELLED before it ships. */
export const ORDER_STATUSES = ["PLACED", "PAID", "SHIPPED", "CANCELLED"] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** What each event makes of the order's status. */
export const STATUS_AFTER = {
  OrderPlaced: "PLACED",
  OrderPaid: "PAID",
  OrderShipped: "SHIPPED",
  OrderCancelled: "CANCELLED",
} as const satisfies Record<OrderEvent["type"], OrderStatus>;

export interface PlacedLine {
  productId: string;
  sku: string;
  name: string;
  quantity: number;
  unitPriceCents: number;
}

export type OrderPlaced = {
  type: "OrderPlaced";
  data: {
    orderId: string;
    customerId: string;
    lines: PlacedLine[];
    totalCents: number;
    itemCount: number;
    placedAt: string;
    /** The payment deadline: cancelled by the system if still PLACED then. Absent on orders placed before deadlines existed (they never expire). */
    expiresAt?: string;
  };
};

/** Why an order was cancelled: by its customer, by an admin, or by the system when its payment deadline passed. */
export const CANCELLATION_REASONS = ["CUSTOMER", "ADMIN", "PAYMENT_TIMEOUT"] as const;
export type CancellationReason = (typeof CANCELLATION_REASONS)[number];

/** Releases the reserved stock of every line. */
export type OrderCancelled = {
  type: "OrderCancelled";
  data: {
    orderId: string;
    customerId: string;
    previousStatus: OrderStatus;
    lines: { productId: string; quantity: number }[];
    /** Absent on events from before reasons were recorded: the actor's role tells (admin: ADMIN, else CUSTOMER). */
    reason?: CancellationReason;
  };
};

export type OrderPaid = {
  type: "OrderPaid";
  data: { orderId: string; customerId: string };
};

/** The reserved stock leaves the warehouse: on hand and reserved both go down. */
export type OrderShipped = {
  type: "OrderShipped";
  data: { orderId: string; customerId: string; lines: { productId: string; quantity: number }[] };
};

export type OrderEvent = OrderPlaced | OrderCancelled | OrderPaid | OrderShipped;

export const ORDER_STREAM = "order";

/** Why an OrderCancelled cancelled: recorded on it, or (events from before reasons were) told by the actor's role. */
export const cancellationReasonOf = (data: { reason?: CancellationReason }, actorRole: string | undefined) =>
  data.reason ?? (actorRole === "admin" ? "ADMIN" : "CUSTOMER");
