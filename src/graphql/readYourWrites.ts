import type { CommandOutcome } from "../write/commandBus";
import type { GraphQLContext } from "./context";

/**
 * A mutation answers with its log position and, once the named projection has applied it
 * (learned from read_changed, no polling), the row from the read table; null after the bounded wait.
 * The actor's next queries on this instance then see the write too, replicas or not.
 */
export async function readBack<R, Row>(
  ctx: GraphQLContext,
  outcome: CommandOutcome<R>,
  projection: string,
  load: () => Promise<Row | null>,
): Promise<{ position: string; row: Row | null }> {
  const { feed, readYourWritesTimeoutMs } = ctx.services;
  const reached = await feed.waitFor(projection, outcome.position, readYourWritesTimeoutMs);
  if (reached) ctx.services.reads.wrote(ctx.actor);
  return { position: outcome.position.position.toString(), row: reached ? await load() : null };
}
