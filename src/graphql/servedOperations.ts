import { GraphQLError, type OperationTypeNode } from "graphql";
import type { ApolloServerPlugin } from "@apollo/server";
import type { Service } from "../config";

/** The service an operation type needs: mutations are commands; queries (`projections` too) and subscriptions, queries. */
const NEEDS: Record<OperationTypeNode, Service> = {
  query: "queries",
  mutation: "commands",
  subscription: "queries",
};

/** NOT_SERVED for an operation type this instance does not serve (SERVICES), else undefined. */
export function notServed(
  operation: OperationTypeNode | undefined,
  served: ReadonlySet<Service>,
): GraphQLError | undefined {
  if (!operation || served.has(NEEDS[operation])) return undefined;
  return new GraphQLError(
    `this instance does not serve ${operation === "mutation" ? "mutations" : `${operation === "query" ? "queries" : "subscriptions"}`} (SERVICES=${[...served].join(",")}); send it to one that serves ${NEEDS[operation]}`,
    // HTTP 200: the request was fine, this instance is the wrong one for it.
    { extensions: { code: "NOT_SERVED", http: { status: 200 } } },
  );
}

/** Over HTTP: refuses operations of a type this instance does not serve, before they run. */
export function servedOperationsOnly(served: ReadonlySet<Service>): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          const error = notServed(operation?.operation, served);
          if (error) throw error;
        },
      };
    },
  };
}
