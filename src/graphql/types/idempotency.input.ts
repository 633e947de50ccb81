import { IsOptional, IsString, Length } from "class-validator";
import { Field, InputType } from "type-graphql";
import { MAX_KEY_LENGTH } from "../../write/idempotency";

/** The optional idempotency key every mutation input but placeOrder's carries (inputs extend it). */
@InputType()
export abstract class WithIdempotencyKey {
  @Field(() => String, {
    nullable: true,
    description: "Optional: a retry with the same key returns the first outcome and changes nothing.",
  })
  @IsOptional()
  @IsString()
  @Length(1, MAX_KEY_LENGTH)
  idempotencyKey?: string | null;
}
