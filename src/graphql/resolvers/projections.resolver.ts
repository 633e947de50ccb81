import { Ctx, Query, Resolver } from "type-graphql";
import { requireAdmin, type GraphQLContext } from "../context";
import { ProjectionStatus } from "../types/projection.type";
import { RelayStatus } from "../types/relay.type";

@Resolver()
export class ProjectionsResolver {
  @Query(() => [ProjectionStatus], { description: "Admin. Health and lag of every projection." })
  projections(@Ctx() ctx: GraphQLContext) {
    requireAdmin(ctx);
    return ctx.services.projections.statuses();
  }

  @Query(() => RelayStatus, {
    nullable: true,
    description:
      "Admin. The event stream on NATS against the event log, asked of both now; null on an instance without EVENTS_NATS_URL and DATABASE_URL.",
  })
  relay(@Ctx() ctx: GraphQLContext) {
    requireAdmin(ctx);
    return ctx.services.relay?.status() ?? null;
  }
}
