import { ClassType, Field, Int, ObjectType } from "type-graphql";
import type { Page } from "../../read/queries/cursor";

@ObjectType()
export class PageInfo {
  @Field(() => Boolean) hasNextPage!: boolean;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

/** Relay-style connection over an edge type. */
export function Connection<TEdge extends object>(Edge: ClassType<TEdge>) {
  @ObjectType()
  abstract class ConnectionClass {
    @Field(() => [Edge]) edges!: TEdge[];
    @Field(() => PageInfo) pageInfo!: PageInfo;
    @Field(() => Int) totalCount!: number;
  }
  return ConnectionClass;
}

export function toConnection<T>(page: Page<T>, cursor: (row: T) => string) {
  const edges = page.rows.map((node) => ({ cursor: cursor(node), node }));
  return {
    edges,
    pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
    // A getter: the count query runs only when the client selects totalCount.
    get totalCount() {
      return page.count();
    },
  };
}
