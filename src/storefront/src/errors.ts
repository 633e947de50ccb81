// No browser API here: the words are unit-tested in Node (test/unit/storefront-errors.unit.test.ts).

/** What an error means to a shopper, in words. */
export function describeError(
  error: unknown,
  names: (productId: string) => string | undefined = () => undefined,
): string {
  const graphQLErrors = (error as { graphQLErrors?: { message: string; extensions?: Record<string, unknown> }[] })
    ?.graphQLErrors;
  const first = graphQLErrors?.[0];
  if (!first) return (error as Error)?.message?.replace(/^\[Network\] /, "Network: ") ?? "Something went wrong";
  const ext = first.extensions ?? {};
  switch (ext.code) {
    case "OUT_OF_STOCK": {
      const name = typeof ext.productId === "string" ? (names(ext.productId) ?? "this product") : "a product";
      return ext.available === 0 ? `${name} is sold out` : `Only ${String(ext.available)} left of ${name}`;
    }
    case "BAD_USER_INPUT":
      return ext.field ? `${String(ext.field)}: ${first.message}` : first.message;
    case "UNAUTHENTICATED":
      return "Please sign in first";
    case "FORBIDDEN":
      return "You are not allowed to do that";
    case "INVALID_STATE":
      return `Not possible any more: ${first.message}`;
    case "OVERLOADED":
      return "The shop is very busy right now: please try again in a moment";
    default:
      return first.message;
  }
}
