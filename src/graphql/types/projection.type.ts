import { Field, Float, GraphQLISODateTime, Int, ObjectType } from "type-graphql";

@ObjectType({ description: "How far a projection is behind the event log." })
export class ProjectionStatus {
  @Field(() => String) name!: string;
  @Field(() => String, { description: "Event log position of the last applied event." }) position!: string;
  @Field(() => Int, { description: "Committed events not yet applied, when the projector last measured." })
  lagEvents!: number;
  @Field(() => Float, {
    description: "Age of the oldest event not yet applied, when measured (as of now once the measurement is stale).",
  })
  lagSeconds!: number;
  @Field(() => String, { description: "RUNNING, FAILED (halted on a poison event) or REBUILDING." }) status!: string;
  @Field(() => String, { nullable: true }) lastError!: string | null;
  @Field(() => String, { nullable: true, description: "Position of the event it failed on." }) failedPosition!:
    string | null;
  @Field(() => GraphQLISODateTime) updatedAt!: Date;
  @Field(() => String, {
    nullable: true,
    description: "The instance (INSTANCE_ID) that holds the projection's lease; null when none does.",
  })
  leader!: string | null;
  @Field(() => GraphQLISODateTime, {
    nullable: true,
    description:
      "When the projection's leader last measured its lag (every PROJECTOR_POLL_MS while it leads); null when none has.",
  })
  lagMeasuredAt!: Date | null;
}
