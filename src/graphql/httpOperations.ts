import { GraphQLError } from "graphql";
import type { ApolloServerPlugin } from "@apollo/server";
import { AppError, type ErrorCode } from "../shared/errors";

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

/** The HTTP status of a mutation refused for a while: for its actor's rate, or an overloaded instance. */
export const RETRY_LATER_STATUS: Partial<Record<ErrorCode, number>> = { RATE_LIMITED: 429, OVERLOADED: 503 };

/**
 * A mutation refused for its actor's rate (429) or because the instance is overloaded (503):
 * that status and Retry-After, besides the code in the body.
 */
export function retryLaterStatus(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ errors, response }) {
          const refused = errors
            ?.map((e) => e.originalError)
            .find((e): e is AppError => e instanceof AppError && RETRY_LATER_STATUS[e.code] !== undefined);
          if (!refused) return;
          response.http.status = RETRY_LATER_STATUS[refused.code];
          response.http.headers.set("retry-after", String(refused.details.retryAfterSeconds));
        },
      };
    },
  };
}
