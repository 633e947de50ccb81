import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from "graphql";
import type { ApolloServerPlugin } from "@apollo/server";

/**
 * The standard introspection query (GraphiQL, Apollo Sandbox, codegen from a URL) nests 15
 * levels; an operation that asks only for __schema / __type gets this bound instead.
 */
export const INTROSPECTION_MAX_DEPTH = 15;

/** Rejects documents nested deeper than maxDepth (counting fields, through fragments). */
export function depthLimit(maxDepth: number) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const def of context.getDocument().definitions)
      if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    const depthOf = (set: SelectionSetNode | undefined, seen: Set<string>): number => {
      if (!set) return 0;
      let max = 0;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) max = Math.max(max, sel.selectionSet ? 1 + depthOf(sel.selectionSet, seen) : 1);
        else if (sel.kind === Kind.INLINE_FRAGMENT) max = Math.max(max, depthOf(sel.selectionSet, seen));
        else if (!seen.has(sel.name.value)) {
          const fragment = fragments.get(sel.name.value);
          max = Math.max(max, depthOf(fragment?.selectionSet, new Set([...seen, sel.name.value])));
        }
      }
      return max;
    };
    return {
      OperationDefinition(node) {
        const depth = depthOf(node.selectionSet, new Set());
        const introspectionOnly = node.selectionSet.selections.every(
          (sel) => sel.kind === Kind.FIELD && sel.name.value.startsWith("__"),
        );
        const limit = introspectionOnly ? Math.max(maxDepth, INTROSPECTION_MAX_DEPTH) : maxDepth;
        if (depth > limit) {
          context.reportError(
            new GraphQLError(`query depth ${depth} exceeds the limit of ${limit}`, {
              nodes: [node],
              extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
            }),
          );
        }
      },
    };
  };
}

/**
 * Cost of an operation: 1 per field, and in a paged field (with `first`) its `edges` / `nodes`
 * cost `first` times (default page size when `first` is omitted); pageInfo and totalCount exist
 * once per page and cost once. Variables are resolved, so the limit cannot be dodged by passing
 * `first` as a variable.
 */
export function operationCost(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown>,
): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  let operation: OperationDefinitionNode | undefined;
  for (const def of document.definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    else if (def.kind === Kind.OPERATION_DEFINITION && (!operationName || def.name?.value === operationName))
      operation ??= def;
  }
  const firstOf = (field: FieldNode): number | undefined => {
    const arg = field.arguments?.find((a) => a.name.value === "first");
    if (!arg) return field.selectionSet && PAGED_FIELDS.has(field.name.value) ? DEFAULT_PAGE : undefined;
    if (arg.value.kind === Kind.INT) return Number(arg.value.value);
    if (arg.value.kind === Kind.VARIABLE) {
      const v = variables[arg.value.name.value];
      return typeof v === "number" ? v : DEFAULT_PAGE;
    }
    return DEFAULT_PAGE;
  };
  /** pageSize: set for the selections of a paged field, whose item fields repeat per item. */
  const costOf = (set: SelectionSetNode | undefined, seen: Set<string>, pageSize?: number): number => {
    if (!set) return 0;
    let total = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        const first = firstOf(sel);
        const cost = 1 + costOf(sel.selectionSet, seen, first === undefined ? undefined : Math.max(first, 1));
        total += pageSize !== undefined && ITEM_FIELDS.has(sel.name.value) ? pageSize * cost : cost;
      } else if (sel.kind === Kind.INLINE_FRAGMENT) total += costOf(sel.selectionSet, seen, pageSize);
      else if (!seen.has(sel.name.value))
        total += costOf(fragments.get(sel.name.value)?.selectionSet, new Set([...seen, sel.name.value]), pageSize);
    }
    return total;
  };
  return operation ? costOf(operation.selectionSet, new Set()) : 0;
}

const DEFAULT_PAGE = 20;
const PAGED_FIELDS = new Set(["products", "orders", "myOrders"]);
/** The fields of a connection that repeat once per item. */
const ITEM_FIELDS = new Set(["edges", "nodes"]);

/** The complexity error for an operation over the limit (Apollo plugin and graphql-ws alike), else undefined. */
export function complexityError(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown>,
  maxComplexity: number,
): GraphQLError | undefined {
  const cost = operationCost(document, operationName, variables);
  if (cost <= maxComplexity) return undefined;
  return new GraphQLError(`query complexity ${cost} exceeds the limit of ${maxComplexity}`, {
    extensions: { code: "GRAPHQL_VALIDATION_FAILED", http: { status: 400 } },
  });
}

export function complexityLimit(maxComplexity: number): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document }) {
          const error = complexityError(document, request.operationName, request.variables ?? {}, maxComplexity);
          if (error) throw error;
        },
      };
    },
  };
}
