import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import { TokenVerifier, type JwksOptions } from "../../src/http/auth";
import { setupFile } from "../support/app";
import { collect, GraphQLClient, TEST_JWT_SECRET, token } from "../support/client";
import { AUDIENCE, IdentityProvider, ISSUER, newKey, sign } from "../support/identityProvider";
import { eventually } from "../support/wait";
import { MyOrdersDocument, ProjectionsDocument } from "../../src/storefront/generated/graphql";

// Tokens from an identity provider (CONTRACT.md, "Auth"): RS256 and ES256 keys published as a
// JWKS by a real HTTP server of the test's own, rotated while the API runs.

let idp: IdentityProvider;
beforeAll(async () => {
  idp = await IdentityProvider.start();
});
afterAll(async () => idp?.stop());

const jwks = (extra: Partial<JwksOptions> = {}): JwksOptions => idp.options(extra);

const outcome = (verifier: TokenVerifier, jwt: string) =>
  verifier.actorOf(`Bearer ${jwt}`).then(
    (actor) => actor,
    (error: Error & { code?: string }) => `${error.code}: ${error.message}`,
  );

describe("tokens signed by an identity provider's keys (JWKS over HTTP)", () => {
  it("accepts RS256 and ES256 tokens, the role from `role` by default, admin winning over customer", async () => {
    const [rsa, ec] = await Promise.all([newKey("rsa-1", "RS256"), newKey("ec-1", "ES256")]);
    idp.published = [rsa, ec];
    const verifier = new TokenVerifier({ jwks: jwks() });
    expect(await outcome(verifier, await sign(rsa, { sub: "alice", role: "customer" }))).toEqual({
      kind: "user",
      id: "alice",
      role: "customer",
    });
    expect(await outcome(verifier, await sign(ec, { sub: "ops", role: ["customer", "admin"] }))).toEqual({
      kind: "user",
      id: "ops",
      role: "admin",
    });
  });

  it("reads the role where AUTH_ROLE_CLAIM says (realm_access.roles), and only there", async () => {
    const key = await newKey("rsa-realm", "RS256");
    idp.published = [key];
    const verifier = new TokenVerifier({ jwks: jwks({ roleClaim: "realm_access.roles" }) });
    expect(
      await outcome(
        verifier,
        await sign(key, { sub: "kc-user", realm_access: { roles: ["offline_access", "customer"] } }),
      ),
    ).toMatchObject({ role: "customer" });
    expect(await outcome(verifier, await sign(key, { sub: "kc-user2", role: "admin" }))).toBe(
      "UNAUTHENTICATED: the token's role must be customer or admin",
    );
  });

  it("refuses a wrong issuer, a wrong audience, no role, an expired token, and keys not in the JWKS", async () => {
    const [key, stranger] = await Promise.all([newKey("rsa-2", "RS256"), newKey("unknown", "RS256")]);
    idp.published = [key];
    const verifier = new TokenVerifier({ jwks: jwks() });
    const refusedAs = async (jwt: Promise<string>) => outcome(verifier, await jwt);
    expect(await refusedAs(sign(key, { role: "customer" }, { issuer: "https://evil.test" }))).toBe(
      "UNAUTHENTICATED: the token is not valid",
    );
    expect(await refusedAs(sign(key, { role: "customer" }, { audience: "another-api" }))).toBe(
      "UNAUTHENTICATED: the token is not valid",
    );
    expect(await refusedAs(sign(key, { role: "guest" }))).toBe(
      "UNAUTHENTICATED: the token's role must be customer or admin",
    );
    expect(await refusedAs(sign(key, { role: "customer" }, { expiresIn: "-1m" }))).toBe(
      "UNAUTHENTICATED: the token has expired",
    );
    expect(await refusedAs(sign(stranger, { role: "admin" }))).toBe("UNAUTHENTICATED: the token is not valid");
  });

  it("refuses HS256 made with the provider's public key, alg none, and HS256 at all unless JWT_SECRET is set", async () => {
    const key = await newKey("rsa-3", "RS256");
    idp.published = [key];
    const verifier = new TokenVerifier({ jwks: jwks() });
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const claims = {
      sub: "mallory",
      role: "admin",
      iss: ISSUER,
      aud: AUDIENCE,
      exp: Math.floor(Date.now() / 1000) + 600,
    };
    const unsigned = `${b64({ alg: "HS256", kid: key.kid })}.${b64(claims)}`;
    const confused = `${unsigned}.${createHmac("sha256", key.publicPem).update(unsigned).digest("base64url")}`;
    expect(await outcome(verifier, confused)).toBe("UNAUTHENTICATED: tokens signed HS256 are not accepted");
    expect(await outcome(verifier, `${b64({ alg: "none" })}.${b64(claims)}.`)).toBe(
      "UNAUTHENTICATED: tokens signed none are not accepted",
    );
    expect(await outcome(verifier, token("admin", "dev"))).toBe(
      "UNAUTHENTICATED: tokens signed HS256 are not accepted",
    );
    const both = new TokenVerifier({ jwks: jwks(), secret: TEST_JWT_SECRET });
    expect(await outcome(both, token("admin", "dev"))).toMatchObject({ id: "dev", role: "admin" });
    expect(await outcome(both, confused)).toBe("UNAUTHENTICATED: the token is not valid");
  });

  it("follows a key rotation without a restart: a new kid is fetched; a removed key is refused once its cached tokens expire", async () => {
    const [old, fresh] = await Promise.all([newKey("rot-old", "RS256"), newKey("rot-new", "ES256")]);
    idp.published = [old];
    // The verifier's clock, moved on by the test: the token expires when the test says, not when a loaded machine gets there.
    let skewMs = 0;
    const verifier = new TokenVerifier(
      { jwks: jwks({ cacheMaxAgeMs: 100 }) },
      { now: () => new Date(Date.now() + skewMs) },
    );
    const shortLived = await sign(old, { sub: "rot", role: "customer" }, { expiresIn: "60s" });
    expect(await outcome(verifier, shortLived)).toMatchObject({ id: "rot" });

    // The provider adds a key and signs with it: accepted at once (the unknown kid fetches the JWKS again).
    idp.published = [old, fresh];
    const before = idp.fetches;
    expect(await outcome(verifier, await sign(fresh, { sub: "rot-new", role: "admin" }))).toMatchObject({
      role: "admin",
    });
    expect(idp.fetches).toBeGreaterThan(before);

    // Then drops the old one: its new tokens are refused once the keys are fetched again; a token
    // verified before stays accepted until it expires, then is refused too.
    idp.published = [fresh];
    await eventually(
      async () =>
        (await outcome(verifier, await sign(old, { sub: "rot-late", role: "customer" }))) ===
        "UNAUTHENTICATED: the token is not valid",
      { what: "tokens of the removed key to be refused" },
    );
    expect(await outcome(verifier, shortLived)).toMatchObject({ id: "rot" });
    skewMs = 61_000;
    // Expired, it is checked again, and its key is gone too: refused for that.
    expect(await outcome(verifier, shortLived)).toBe("UNAUTHENTICATED: the token is not valid");
  });
});

describe("the API with AUTH_JWKS_URL", () => {
  it("answers a provider's customer and admin over HTTP and graphql-ws, and refuses others with 401 and 4401", async () => {
    const key = await newKey("api-1", "RS256");
    idp.published = [key];
    const t = await setupFile({ jwtSecret: undefined, authJwks: jwks({ roleClaim: "realm_access.roles" }) });
    try {
      const customer = t.anonymous.as(await sign(key, { sub: "oidc-alice", realm_access: { roles: ["customer"] } }));
      const admin = t.anonymous.as(await sign(key, { sub: "oidc-ops", realm_access: { roles: ["admin"] } }));
      expect((await customer.request(MyOrdersDocument, { first: 5 })).data?.myOrders.totalCount).toBe(0);
      expect((await admin.request(ProjectionsDocument)).data?.projections.length).toBeGreaterThan(0);

      const hs256 = await new GraphQLClient(t.url).as(token("admin", "dev")).request(ProjectionsDocument);
      expect([hs256.status, hs256.errors?.[0]?.extensions?.code]).toEqual([401, "UNAUTHENTICATED"]);

      const ws = new GraphQLClient(t.url).as(token("admin", "dev")).ws();
      const refused = collect(ws, ProjectionsDocument, {});
      await eventually(() => refused.errors.length > 0, { what: "the socket to be closed" });
      expect((refused.errors[0] as { code?: number }).code).toBe(4401);
      await ws.dispose();
      const ok = customer.ws();
      const mine = collect(ok, MyOrdersDocument, { first: 1 });
      await eventually(() => mine.results.length > 0, { what: "the query over graphql-ws" });
      expect(mine.results[0]!.data?.myOrders.totalCount).toBe(0);
      await ok.dispose();
    } finally {
      await t.teardown();
    }
  });
});
