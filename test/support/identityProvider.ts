import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import type { JwksOptions } from "../../src/http/auth";

// An identity provider as the API sees one: its keys published as a JWKS by a real HTTP server,
// changed by the test while the API runs, and tokens signed with them.

export const ISSUER = "https://idp.test/realms/shop";
export const AUDIENCE = "shop-api";

export interface Key {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

export async function newKey(kid: string, alg: Key["alg"]): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" },
    publicPem: await exportSPKI(publicKey),
  };
}

/** A JWT signed by `key` (its kid in the header unless `kid` says otherwise), from ISSUER for AUDIENCE. */
export function sign(
  key: Key,
  claims: Record<string, unknown>,
  options: { expiresIn?: string; issuer?: string; audience?: string; kid?: string } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: options.kid ?? key.kid })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setSubject((claims.sub as string | undefined) ?? "idp-user")
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "1h")
    .sign(key.privateKey);
}

export class IdentityProvider {
  /** The keys the JWKS lists now (the test changes them). */
  published: Key[] = [];
  /** How often the JWKS was fetched. */
  fetches = 0;

  private readonly server: Server = createServer((_req, res) => {
    this.fetches += 1;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: this.published.map((k) => k.publicJwk) }));
  });

  private constructor() {}

  static async start(): Promise<IdentityProvider> {
    const provider = new IdentityProvider();
    await new Promise<void>((resolve) => provider.server.listen(0, "127.0.0.1", resolve));
    return provider;
  }

  get jwksUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/realms/shop/certs`;
  }

  /** What the API is configured with for this provider (AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE…). */
  options(extra: Partial<JwksOptions> = {}): JwksOptions {
    return { url: this.jwksUrl, issuer: ISSUER, audience: AUDIENCE, cooldownMs: 0, ...extra };
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
