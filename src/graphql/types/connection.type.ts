import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from "graphql";
import { ClassType, Field, Int, ObjectType } from "type-graphql";
import type { Page } from "../../query/cursor";

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

/** An edge whose cursor is encoded when asked for: a page's clients mostly ask for pageInfo's endCursor only. */
class Edge<T> {
  constructor(
    readonly node: T,
    private readonly cursorOf: (row: T) => string,
  ) {}

  get cursor(): string {
    return this.cursorOf(this.node);
  }
}

export function toConnection<T>(page: Page<T>, cursor: (row: T) => string) {
  const edges = page.rows.map((node) => new Edge(node, cursor));
  return {
    edges,
    pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
    // A getter: the count query runs only when the client selects totalCount.
    get totalCount() {
      return page.count();
    },
  };
}

/**
 * Whether the operation selects `field` directly on the value this resolver returns (through
 * fragments). @skip/@include are not evaluated: a field they may leave out counts as selected,
 * which only costs fetching what is not shown.
 */
export function selectsField(info: GraphQLResolveInfo, field: string): boolean {
  const seen = new Set<string>();
  const inSet = (set: SelectionSetNode | undefined): boolean =>
    !!set?.selections.some((sel) => {
      if (sel.kind === Kind.FIELD) return sel.name.value === field;
      if (sel.kind === Kind.INLINE_FRAGMENT) return inSet(sel.selectionSet);
      if (seen.has(sel.name.value)) return false;
      seen.add(sel.name.value);
      return inSet(info.fragments[sel.name.value]?.selectionSet);
    });
  return info.fieldNodes.some((node) => inSet(node.selectionSet));
}
