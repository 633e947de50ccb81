import { Field, GraphQLISODateTime, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import { IsInt, IsOptional, IsString, IsUUID, Length, Max, MaxLength, Min } from "class-validator";
import { Connection } from "./connection.type";
import { WithIdempotencyKey } from "./idempotency.input";
import { STOCK_LEVELS, type StockLevel } from "../../query/catalog.queries";

export const StockLevelEnum = Object.fromEntries(STOCK_LEVELS.map((l) => [l, l])) as { [L in StockLevel]: L };
registerEnumType(StockLevelEnum, {
  name: "StockLevel",
  description: "OUT_OF_STOCK when none is available, LOW_STOCK up to LOW_STOCK_THRESHOLD (default 5), else IN_STOCK.",
});

@ObjectType({ description: "A product as the catalog shows it (read table)." })
export class Product {
  @Field(() => ID) id!: string;
  @Field(() => String) sku!: string;
  @Field(() => String) name!: string;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field(() => Int, { description: "Price in cents." }) priceCents!: number;
  @Field(() => Int, { description: "Units that can be ordered now." }) available!: number;
  @Field(() => Boolean) inStock!: boolean;
  @Field(() => StockLevelEnum, { description: "What a storefront shows instead of the count." })
  stockLevel!: StockLevel;
  @Field(() => Int, { description: "Units in orders that were not cancelled." }) unitsSold!: number;
  @Field(() => GraphQLISODateTime) updatedAt!: Date;
  @Field(() => String, {
    description:
      "Opaque cursor of the last event applied to this row, and of the row: hand it back as `after` to inventoryChanged to resume.",
  })
  position!: string;
}

@ObjectType()
export class ProductEdge {
  @Field(() => String) cursor!: string;
  @Field(() => Product) node!: Product;
}

@ObjectType()
export class ProductConnection extends Connection(ProductEdge) {}

@InputType()
export class ProductFilter {
  @Field(() => String, { nullable: true, description: "Case-insensitive match on name or sku." })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  search?: string | null;

  @Field(() => Boolean, { nullable: true }) inStock?: boolean | null;
}

@InputType()
export class CreateProductInput extends WithIdempotencyKey {
  @Field(() => String) @IsString() @Length(1, 64) sku!: string;
  @Field(() => String) @IsString() @Length(1, 200) name!: string;
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(5000) description?: string | null;
  @Field(() => Int) @IsInt() @Min(0) @Max(100_000_000) priceCents!: number;
  @Field(() => Int) @IsInt() @Min(0) @Max(1_000_000_000) initialStock!: number;
}

@InputType()
export class RestockProductInput extends WithIdempotencyKey {
  @Field(() => ID) @IsUUID() productId!: string;
  @Field(() => Int, { description: "Units added to stock; > 0." })
  @IsInt()
  @Min(1)
  @Max(1_000_000_000)
  quantity!: number;
}

@ObjectType()
export class ProductPayload {
  @Field(() => String, { description: "Event log position of the command's last event (opaque)." }) position!: string;
  @Field(() => Product, {
    nullable: true,
    description:
      "The read row once the projection has reached `position`; null if that took longer than the bounded wait.",
  })
  product!: Product | null;
}
