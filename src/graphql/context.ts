import type { Actor } from "../shared/auth";
import { AppError } from "../shared/errors";
import { isUuid } from "../shared/ids";
import type { CommandBus } from "../write/commandBus";
import type { ChangeFeed } from "../realtime/changeFeed";
import type { CatalogReader } from "../query/reads";
import type { OrderQueries } from "../query/orders.queries";
import type { ProjectionQueries } from "../query/projections.queries";
import type { ProjectionOutline } from "../projection/projection";
import type { QueryReads } from "../query/reads";
import type { RelayStatusQueries } from "../relay/relayStatus";
import { rateLimited, type ActorConcurrency, type TokenBuckets } from "./rateLimit";

/** What resolvers may use: the command bus for mutations, read repositories for everything else. */
export interface Services {
  /** Absent on an instance that does not serve commands (SERVICES): mutations answer NOT_SERVED. */
  bus: CommandBus | undefined;
  feed: ChangeFeed;
  /** On the read database itself: a mutation's read-back, a subscription's first check. */
  catalog: CatalogReader;
  orders: OrderQueries;
  /** Queries: through the read replicas when the reader may use them (see QueryReads). */
  reads: QueryReads;
  projections: ProjectionQueries;
  /** The event stream's lag behind the log, where both are reachable. */
  relay?: RelayStatusQueries;
  readYourWritesTimeoutMs: number;
  /** The projections (names and event types): which of them a mutation's events change, for its read-your-writes. */
  readModels: readonly ProjectionOutline[];
  /** Mutations per signed-in actor on this instance (MUTATIONS_PER_SECOND, MUTATION_BURST); none: no limit. */
  mutationLimit?: TokenBuckets;
  /** Commands of one signed-in actor running at once on this instance (MUTATION_CONCURRENCY); none: no limit. */
  mutationConcurrency?: ActorConcurrency;
}

export interface GraphQLContext {
  actor: Actor;
  correlationId: string;
  services: Services;
}

export type User = Extract<Actor, { kind: "user" }>;

/** The signed-in user calling (ctx: a GraphQL context, or any request's actor). */
export function requireUser(ctx: Pick<GraphQLContext, "actor">): User {
  if (ctx.actor.kind !== "user") throw new AppError("UNAUTHENTICATED", "sign in to do this");
  return ctx.actor;
}

/**
 * The command bus, for a mutation: refused when this instance serves no commands, the write
 * database's queue stands (OVERLOADED), or the actor is over its rate; an actor's commands
 * beyond MUTATION_CONCURRENCY wait for one of theirs to end.
 */
export function commandBus(ctx: GraphQLContext): Pick<CommandBus, "dispatch"> {
  const { bus, mutationLimit, mutationConcurrency } = ctx.services;
  if (!bus) throw new AppError("NOT_SERVED", "this instance does not serve commands (SERVICES)");
  if (ctx.actor.kind !== "user") return bus;
  if (bus.overloaded()) throw bus.shed(); // before the rate's token: a shed mutation costs its actor none
  const retryAfterSeconds = mutationLimit?.take(ctx.actor.id) ?? 0;
  if (retryAfterSeconds > 0) throw rateLimited(retryAfterSeconds);
  if (!mutationConcurrency) return bus;
  const actorId = ctx.actor.id;
  return {
    dispatch: ((...args: Parameters<CommandBus["dispatch"]>) =>
      mutationConcurrency.run(actorId, () => bus.dispatch(...args))) as CommandBus["dispatch"],
  };
}

export function requireAdmin(ctx: Pick<GraphQLContext, "actor">): User {
  const user = requireUser(ctx);
  if (user.role !== "admin") throw new AppError("FORBIDDEN", "only an admin may do this");
  return user;
}

export function assertId(value: string, field: string): string {
  if (!isUuid(value)) throw new AppError("BAD_USER_INPUT", `${field} must be a UUID`, { field });
  return value.toLowerCase();
}
