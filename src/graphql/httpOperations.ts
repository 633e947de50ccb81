import { GraphQLError } from "graphql";
import type { ApolloServerPlugin } from "@apollo/server";

/**
 * Subscriptions are served over graphql-ws only. Over HTTP, Apollo would run the subscription
 * field as a plain resolver (no event to return: a non-null error, reported as an internal
 * error); answer with a clear 400 instead.
 */
export function subscriptionsOnlyOverWebSocket(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation !== "subscription") return;
          throw new GraphQLError(
            "subscriptions are served over graphql-ws (a WebSocket on this same path), not over HTTP",
            {
              extensions: { code: "BAD_REQUEST", http: { status: 400 } },
            },
          );
        },
      };
    },
  };
}
