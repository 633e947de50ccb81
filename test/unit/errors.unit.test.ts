import { describe, expect, it } from "vitest";
import { makeFormatError } from "../../src/graphql/errors";
import { AppError } from "../../src/shared/errors";

const formatted = { message: "raw", path: ["placeOrder"] };
const wrapped = (originalError: unknown) => ({ originalError });

describe("errors as the client sees them", () => {
  const internal: unknown[] = [];
  const format = makeFormatError((e) => internal.push(e));

  it("keeps a domain error's code and message", () => {
    const out = format(formatted, wrapped(new AppError("OUT_OF_STOCK", "only 0 left", { productId: "p" })));
    expect(out).toMatchObject({ message: "only 0 left", extensions: { code: "OUT_OF_STOCK", productId: "p" } });
  });

  it("hides an unexpected error's details, and reports it", () => {
    const bug = new Error("undefined is not a function at secret.ts:12");
    const out = format(formatted, wrapped(bug));
    expect(out).toEqual({
      message: "internal server error",
      path: ["placeOrder"],
      locations: undefined,
      extensions: { code: "INTERNAL_SERVER_ERROR" },
    });
    expect(internal).toContain(bug);
  });

  it("marks a cut database connection as retryable: the outcome is unknown", () => {
    const cut = Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" });
    const out = format(formatted, wrapped(cut));
    expect(out.extensions).toEqual({ code: "INTERNAL_SERVER_ERROR", retryable: true });
    expect(out.message).toMatch(/retry with the same idempotencyKey/);
  });
});
