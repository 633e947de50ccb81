import { describe, expect, it } from "vitest";
import { describeError } from "../../src/storefront/src/errors";

// What the storefront tells a shopper for each error the API can answer (src/storefront/src/errors.ts).
const graphQLError = (message: string, extensions: Record<string, unknown>) => ({
  graphQLErrors: [{ message, extensions }],
});
const names = (id: string) => (id === "p1" ? "Green tea" : undefined);

describe("the storefront's words for errors", () => {
  it.each([
    [
      graphQLError("only 2 of TEA-1 available", { code: "OUT_OF_STOCK", productId: "p1", available: 2 }),
      "Only 2 left of Green tea",
    ],
    [
      graphQLError("only 0 of TEA-1 available", { code: "OUT_OF_STOCK", productId: "p1", available: 0 }),
      "Green tea is sold out",
    ],
    [
      graphQLError("only 1 available", { code: "OUT_OF_STOCK", productId: "p9", available: 1 }),
      "Only 1 left of this product",
    ],
    [
      graphQLError("quantity must be an integer from 1 to 10000", { code: "BAD_USER_INPUT", field: "quantity" }),
      "quantity: quantity must be an integer from 1 to 10000",
    ],
    [graphQLError("sign in to do this", { code: "UNAUTHENTICATED" }), "Please sign in first"],
    [graphQLError("placeOrder is not allowed for role admin", { code: "FORBIDDEN" }), "You are not allowed to do that"],
    [
      graphQLError("only a PLACED order can be paid", { code: "INVALID_STATE" }),
      "Not possible any more: only a PLACED order can be paid",
    ],
    [
      graphQLError("the service is overloaded: try again in a second", { code: "OVERLOADED", retryable: true }),
      "The shop is very busy right now: please try again in a moment",
    ],
    [new Error("[Network] Failed to fetch"), "Network: Failed to fetch"],
  ])("%# says it in words", (error, words) => {
    expect(describeError(error, names)).toBe(words);
  });
});
