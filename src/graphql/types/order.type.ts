import {
  ArrayMaxSize,
  ArrayMinSize,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Max,
  Min,
  ValidateNested,
} from "class-validator";
import { Field, GraphQLISODateTime, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import { Connection } from "./connection.type";

export enum OrderStatus {
  PLACED = "PLACED",
  PAID = "PAID",
  SHIPPED = "SHIPPED",
  CANCELLED = "CANCELLED",
}
registerEnumType(OrderStatus, { name: "OrderStatus" });

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
  @Field(() => OrderStatus) status!: OrderStatus;
  @Field(() => Int) totalCents!: number;
  @Field(() => Int) itemCount!: number;
  @Field(() => [OrderLine]) lines!: OrderLine[];
  @Field(() => GraphQLISODateTime) placedAt!: Date;
  @Field(() => GraphQLISODateTime) updatedAt!: Date;
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
  @Field(() => Int) @IsInt() @Min(1) @Max(10_000) quantity!: number;
}

@InputType()
export class PlaceOrderInput {
  @Field(() => String, { description: "Client-chosen key; a retry with the same key returns the first result." })
  @IsString()
  @Length(1, 200)
  idempotencyKey!: string;

  @Field(() => [OrderLineInput])
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  lines!: OrderLineInput[];
}

@InputType()
export class CancelOrderInput {
  @Field(() => ID) @IsUUID() orderId!: string;
  @Field(() => String, {
    nullable: true,
    description: "Optional: a retry with the same key returns the first outcome and changes nothing.",
  })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  idempotencyKey?: string | null;
}

@InputType()
export class OrderIdInput {
  @Field(() => ID) @IsUUID() orderId!: string;
  @Field(() => String, {
    nullable: true,
    description: "Optional: a retry with the same key returns the first outcome and changes nothing.",
  })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  idempotencyKey?: string | null;
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
