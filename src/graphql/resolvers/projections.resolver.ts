import { Ctx, Query, Resolver } from "type-graphql";
import { requireAdmin, type GraphQLContext } from "../context";
import { ProjectionStatus } from "../types/projection.type";

@Resolver()
export class ProjectionsResolver {
  @Query(() => [ProjectionStatus], { description: "Admin. Health and lag of every projection." })
  projections(@Ctx() ctx: GraphQLContext) {
    requireAdmin(ctx);
    return ctx.services.projections.statuses();
  }
}
