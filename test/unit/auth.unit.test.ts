import { afterEach, describe, expect, it, vi } from "vitest";
import jwt from "jsonwebtoken";
import { actorFromAuthorization, signToken } from "../../src/http/auth";

const SECRET = "unit-secret-0123456789-0123456789-abcdef";
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return `${(error as { code?: string }).code}: ${(error as Error).message}`;
  }
};

afterEach(() => vi.useRealTimers());

describe("a bearer token, verified once and then remembered", () => {
  it("gives the same actor on every use", () => {
    const token = signToken(SECRET, "remembered-customer", "customer");
    const first = actorFromAuthorization(`Bearer ${token}`, SECRET);
    expect(first).toEqual({ kind: "user", id: "remembered-customer", role: "customer" });
    expect(actorFromAuthorization(`Bearer ${token}`, SECRET)).toEqual(first);
  });

  it("is refused once it expires, though it was accepted before", () => {
    vi.useFakeTimers({ now: new Date("2026-11-27T12:00:00Z") });
    const token = signToken(SECRET, "short-lived", "customer", 60);
    expect(actorFromAuthorization(`Bearer ${token}`, SECRET)).toMatchObject({ id: "short-lived" });
    vi.setSystemTime(new Date("2026-11-27T12:00:59Z"));
    expect(actorFromAuthorization(`Bearer ${token}`, SECRET)).toMatchObject({ id: "short-lived" });
    vi.setSystemTime(new Date("2026-11-27T12:01:00Z"));
    expect(codeOf(() => actorFromAuthorization(`Bearer ${token}`, SECRET))).toBe(
      "UNAUTHENTICATED: the token has expired",
    );
  });

  it("is refused before its not-before time, and accepted after it", () => {
    vi.useFakeTimers({ now: new Date("2026-11-27T12:00:00Z") });
    const token = jwt.sign({ sub: "not-yet", role: "admin" }, SECRET, {
      algorithm: "HS256",
      notBefore: 30,
      expiresIn: 3600,
    });
    expect(codeOf(() => actorFromAuthorization(`Bearer ${token}`, SECRET))).toBe(
      "UNAUTHENTICATED: the token is not valid",
    );
    vi.setSystemTime(new Date("2026-11-27T12:00:30Z"));
    expect(actorFromAuthorization(`Bearer ${token}`, SECRET)).toEqual({ kind: "user", id: "not-yet", role: "admin" });
  });

  it("does not vouch for a token under another secret, nor for a tampered copy", () => {
    const token = signToken(SECRET, "one-secret", "admin");
    expect(actorFromAuthorization(`Bearer ${token}`, SECRET)).toMatchObject({ id: "one-secret" });
    expect(codeOf(() => actorFromAuthorization(`Bearer ${token}`, `${SECRET}-other`))).toBe(
      "UNAUTHENTICATED: the token is not valid",
    );
    const [header, , signature] = token.split(".");
    const forged = `${header}.${Buffer.from(JSON.stringify({ sub: "one-secret", role: "admin", exp: 9_999_999_999 })).toString("base64url")}.${signature}`;
    expect(codeOf(() => actorFromAuthorization(`Bearer ${forged}`, SECRET))).toBe(
      "UNAUTHENTICATED: the token is not valid",
    );
  });
});
