import { afterEach, describe, expect, it, vi } from "vitest";
import jwt from "jsonwebtoken";
import { TokenVerifier, signToken } from "../../src/http/auth";

const SECRET = "unit-secret-0123456789-0123456789-abcdef";
const verifiers = new Map<string, TokenVerifier>();
/** The actor, from a verifier per secret (each remembers what it verified). */
const actorFromAuthorization = (header: string, secret: string) => {
  let verifier = verifiers.get(secret);
  if (!verifier) verifiers.set(secret, (verifier = new TokenVerifier({ secret })));
  return verifier.actorOf(header);
};
const codeOf = async (fn: () => Promise<unknown>): Promise<string | undefined> => {
  try {
    await fn();
    return undefined;
  } catch (error) {
    return `${(error as { code?: string }).code}: ${(error as Error).message}`;
  }
};

afterEach(() => vi.useRealTimers());

describe("a bearer token, verified once and then remembered", () => {
  it("gives the same actor on every use", async () => {
    const token = signToken(SECRET, "remembered-customer", "customer");
    const first = await actorFromAuthorization(`Bearer ${token}`, SECRET);
    expect(first).toEqual({ kind: "user", id: "remembered-customer", role: "customer" });
    expect(await actorFromAuthorization(`Bearer ${token}`, SECRET)).toEqual(first);
  });

  it("is refused once it expires, though it was accepted before", async () => {
    vi.useFakeTimers({ now: new Date("2026-11-27T12:00:00Z") });
    const token = signToken(SECRET, "short-lived", "customer", 60);
    expect(await actorFromAuthorization(`Bearer ${token}`, SECRET)).toMatchObject({ id: "short-lived" });
    vi.setSystemTime(new Date("2026-11-27T12:00:59Z"));
    expect(await actorFromAuthorization(`Bearer ${token}`, SECRET)).toMatchObject({ id: "short-lived" });
    vi.setSystemTime(new Date("2026-11-27T12:01:00Z"));
    expect(await codeOf(() => actorFromAuthorization(`Bearer ${token}`, SECRET))).toBe(
      "UNAUTHENTICATED: the token has expired",
    );
  });

  it("is refused before its not-before time, and accepted after it", async () => {
    vi.useFakeTimers({ now: new Date("2026-11-27T12:00:00Z") });
    const token = jwt.sign({ sub: "not-yet", role: "admin" }, SECRET, {
      algorithm: "HS256",
      notBefore: 30,
      expiresIn: 3600,
    });
    expect(await codeOf(() => actorFromAuthorization(`Bearer ${token}`, SECRET))).toBe(
      "UNAUTHENTICATED: the token is not valid",
    );
    vi.setSystemTime(new Date("2026-11-27T12:00:30Z"));
    expect(await actorFromAuthorization(`Bearer ${token}`, SECRET)).toEqual({
      kind: "user",
      id: "not-yet",
      role: "admin",
    });
  });

  it("does not vouch for a token under another secret, nor for a tampered copy", async () => {
    const token = signToken(SECRET, "one-secret", "admin");
    expect(await actorFromAuthorization(`Bearer ${token}`, SECRET)).toMatchObject({ id: "one-secret" });
    expect(await codeOf(() => actorFromAuthorization(`Bearer ${token}`, `${SECRET}-other`))).toBe(
      "UNAUTHENTICATED: the token is not valid",
    );
    const [header, , signature] = token.split(".");
    const forged = `${header}.${Buffer.from(JSON.stringify({ sub: "one-secret", role: "admin", exp: 9_999_999_999 })).toString("base64url")}.${signature}`;
    expect(await codeOf(() => actorFromAuthorization(`Bearer ${forged}`, SECRET))).toBe(
      "UNAUTHENTICATED: the token is not valid",
    );
  });
});

describe("a shared-secret token's role", () => {
  it("is one string, customer or admin: an array (the providers' form) is refused under JWT_SECRET", async () => {
    const withArray = jwt.sign({ sub: "arr", role: ["customer"] }, SECRET, { algorithm: "HS256", expiresIn: 60 });
    expect(await codeOf(() => actorFromAuthorization(`Bearer ${withArray}`, SECRET))).toBe(
      "UNAUTHENTICATED: the token's role must be customer or admin",
    );
  });
});
