import { GraphQLError } from "graphql";
import type { ApolloServerPlugin } from "@apollo/server";
import { AppError } from "../shared/errors";

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

/** A mutation refused for its actor's rate: HTTP 429 with Retry-After, besides RATE_LIMITED in the body. */
export function rateLimitedAs429(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ errors, response }) {
          const limited = errors
            ?.map((e) => e.originalError)
            .find((e): e is AppError => e instanceof AppError && e.code === "RATE_LIMITED");
          if (!limited) return;
          response.http.status = 429;
          response.http.headers.set("retry-after", String(limited.details.retryAfterSeconds));
        },
      };
    },
  };
}
