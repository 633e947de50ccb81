import { projectionsChangedBy } from "../projection/projection";
import type { CommandOutcome } from "../write/commandBus";
import type { GraphQLContext } from "./context";

/**
 * A mutation answers with its log position and, once every projection its events change has
 * applied it (learned from read_changed, no polling), the row from the named projection's read
 * table; null after the bounded wait. So the actor's next queries on this instance see all of the
 * write (an order's stock in the catalog too), replicas or not. A projection halted at a poison
 * event is not waited for.
 */
export async function readBack<R, Row>(
  ctx: GraphQLContext,
  outcome: CommandOutcome<R>,
  projection: string,
  load: () => Promise<Row | null>,
): Promise<{ position: string; row: Row | null }> {
  const { feed, readYourWritesTimeoutMs, readModels } = ctx.services;
  const others = projectionsChangedBy(readModels, outcome.eventTypes).filter((name) => name !== projection);
  const [reached] = await Promise.all(
    [projection, ...others].map((name) => feed.waitFor(name, outcome.position, readYourWritesTimeoutMs)),
  );
  if (reached) ctx.services.reads.wrote(ctx.actor);
  return { position: outcome.position.position.toString(), row: reached ? await load() : null };
}
