import { Field, Float, Int, ObjectType } from "type-graphql";

@ObjectType({ description: "How far the event stream on NATS JetStream is behind the event log." })
export class RelayStatus {
  @Field(() => String, { description: "The JetStream stream (EVENTS_STREAM)." }) stream!: string;
  @Field(() => String, {
    nullable: true,
    description: "The instance whose relay publishes (holds the lease); null when none does.",
  })
  leader!: string | null;
  @Field(() => Float, { description: "The stream's last sequence (0 when empty)." }) streamSequence!: number;
  @Field(() => String, { nullable: true, description: "Event log position of the stream's last message." })
  streamPosition!: string | null;
  @Field(() => Int, {
    nullable: true,
    description:
      "Committed events of the log not yet in the stream, as the leading relay last measured; null on an instance whose relay does not lead.",
  })
  lagEvents!: number | null;
  @Field(() => Float, {
    nullable: true,
    description: "Age of the oldest committed event not yet in the stream (as lagEvents).",
  })
  lagSeconds!: number | null;
}
