import { ArrayMaxSize, ArrayMinSize, IsInt, IsString, IsUUID, Length, Max, Min, ValidateNested } from "class-validator";
import { Field, GraphQLISODateTime, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import { CANCELLATION_REASONS, ORDER_STATUSES, type CancellationReason, type OrderStatus } from "../../events";
import { MAX_KEY_LENGTH } from "../../write/idempotency";
import { MAX_LINE_QUANTITY, MAX_ORDER_LINES } from "../../write/orders/commands/placeOrder";
import { Connection } from "./connection.type";
import { WithIdempotencyKey } from "./idempotency.input";

/** The GraphQL enum of the order statuses (one list: events/orders.events.ts). */
export const OrderStatusEnum = Object.fromEntries(ORDER_STATUSES.map((s) => [s, s])) as { [S in OrderStatus]: S };
registerEnumType(OrderStatusEnum, { name: "OrderStatus" });

export const CancellationReasonEnum = Object.fromEntries(CANCELLATION_REASONS.map((r) => [r, r])) as {
  [R in CancellationReason]: R;
};
registerEnumType(CancellationReasonEnum, {
  name: "CancellationReason",
  description: "Who cancelled: the customer, an admin, or the system when the payment deadline passed.",
});

@ObjectType()
export class OrderLine {
  @Field(() => ID) productId!: string;
  @Field(() => String) sku!: string;
  @Field(() => String) name!: string;
  @Field(() => Int) quantity!: number;
  @Field(() => Int, { description: "Price in cents when the order was placed." }) unitPriceCents!: number;
}

@ObjectType({ description: "An order summary (read table)." })
export class Order {
  @Field(() => ID) id!: string;
  @Field(() => String) customerId!: string;
  @Field(() => OrderStatusEnum) status!: OrderStatus;
  @Field(() => Int) totalCents!: number;
  @Field(() => Int) itemCount!: number;
  @Field(() => [OrderLine]) lines!: OrderLine[];
  @Field(() => GraphQLISODateTime) placedAt!: Date;
  @Field(() => GraphQLISODateTime) updatedAt!: Date;
  @Field(() => GraphQLISODateTime, {
    nullable: true,
    description:
      "While PLACED: when the order is cancelled if still unpaid (ORDER_PAYMENT_TIMEOUT_SECONDS after placedAt). Null in every other status.",
  })
  expiresAt!: Date | null;
  @Field(() => CancellationReasonEnum, { nullable: true, description: "Null unless CANCELLED." })
  cancellationReason!: CancellationReason | null;
  @Field(() => String, {
    description:
      "Opaque cursor of the last event applied to this row, and of the row: hand it back as `after` to orderUpdated to resume.",
  })
  position!: string;
}

@ObjectType()
export class OrderEdge {
  @Field(() => String) cursor!: string;
  @Field(() => Order) node!: Order;
}

@ObjectType()
export class OrderConnection extends Connection(OrderEdge) {}

@InputType()
export class OrderLineInput {
  @Field(() => ID) @IsUUID() productId!: string;
  @Field(() => Int) @IsInt() @Min(1) @Max(MAX_LINE_QUANTITY) quantity!: number;
}

@InputType()
export class PlaceOrderInput {
  @Field(() => String, { description: "Client-chosen key; a retry with the same key returns the first result." })
  @IsString()
  @Length(1, MAX_KEY_LENGTH)
  idempotencyKey!: string;

  @Field(() => [OrderLineInput])
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_ORDER_LINES)
  @ValidateNested({ each: true })
  lines!: OrderLineInput[];
}

@InputType()
export class CancelOrderInput extends WithIdempotencyKey {
  @Field(() => ID) @IsUUID() orderId!: string;
}

@InputType()
export class OrderIdInput extends WithIdempotencyKey {
  @Field(() => ID) @IsUUID() orderId!: string;
}

@ObjectType()
export class OrderPayload {
  @Field(() => String, { description: "Event log position of the command's last event (opaque)." }) position!: string;
  @Field(() => Order, {
    nullable: true,
    description:
      "The read row once the projection has reached `position`; null if that took longer than the bounded wait.",
  })
  order!: Order | null;
}
