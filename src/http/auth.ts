import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import { AppError } from "../shared/errors";
import { anonymous, type Actor, type Role } from "../shared/auth";
import { systemClock, type Clock } from "../shared/clock";

/** What an identity provider signs with (never HS256 from a JWKS: a public key is no secret). */
const ASYMMETRIC = ["RS256", "PS256", "ES256", "EdDSA"];

/** Tokens from an identity provider (OIDC): keys from its JWKS, chosen by `kid`. */
export interface JwksOptions {
  /** AUTH_JWKS_URL */
  url: string;
  /** AUTH_ISSUER */
  issuer: string;
  /** AUTH_AUDIENCE */
  audience: string;
  /** AUTH_ROLE_CLAIM: a dotted path (realm_access.roles) to a string or an array of strings; default `role`. */
  roleClaim?: string;
  /** How long fetched keys are trusted before the JWKS is fetched again (jose's cacheMaxAge). */
  cacheMaxAgeMs?: number;
  /** The least time between two fetches of the JWKS for an unknown kid (jose's cooldownDuration). */
  cooldownMs?: number;
}

export interface AuthOptions {
  /** JWT_SECRET: HS256 tokens with the role in `role` (none: HS256 tokens are refused). */
  secret?: string;
  jwks?: JwksOptions;
}

// A client sends the same token with every request: its signature is checked once, then the
// verified actor is remembered (with the token's own time bounds, checked on every use) for up to
// VERIFIED_TOKENS tokens, the oldest forgotten first.
const VERIFIED_TOKENS = 10_000;
interface Verified {
  actor: Extract<Actor, { kind: "user" }>;
  /** exp and nbf, in seconds. */
  exp: number | undefined;
  nbf: number | undefined;
}

const refused = (message: string) => new AppError("UNAUTHENTICATED", message);

/**
 * Turns an Authorization header into the actor, with jose verifying every token: HS256 with
 * JWT_SECRET, and (with AUTH_JWKS_URL) RS256, PS256, ES256 or EdDSA by a key of the identity
 * provider's JWKS, fetched again (rate-limited) when a token names an unknown kid, so a key
 * rotation needs no restart. `alg: none` and any other algorithm are refused.
 */
export class TokenVerifier {
  private readonly secretKey: KeyObject | undefined;
  private readonly keySet: JWTVerifyGetKey | undefined;
  private readonly verified = new Map<string, Verified>();

  constructor(
    private readonly options: AuthOptions,
    /** What a token's exp and nbf are checked against (jose's currentDate too). */
    private readonly clock: Clock = systemClock,
  ) {
    this.secretKey = options.secret ? createSecretKey(Buffer.from(options.secret, "utf8")) : undefined;
    this.keySet = options.jwks
      ? createRemoteJWKSet(new URL(options.jwks.url), {
          cacheMaxAge: options.jwks.cacheMaxAgeMs ?? 10 * 60_000,
          cooldownDuration: options.jwks.cooldownMs ?? 30_000,
        })
      : undefined;
  }

  /** `Bearer <JWT>` → actor. No header: anonymous. A header that does not verify: UNAUTHENTICATED. */
  async actorOf(header: unknown): Promise<Actor> {
    if (header === undefined || header === null || header === "") return anonymous;
    if (typeof header !== "string") throw refused("authorization must be a string");
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) throw refused("authorization must be 'Bearer <token>'");
    const token = match[1]!;
    const known = this.verified.get(token);
    if (known && this.stillValid(known)) return known.actor;
    this.verified.delete(token); // expired (the check below says so) or not seen yet
    const fresh = await this.verify(token);
    if (this.verified.size >= VERIFIED_TOKENS) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, fresh);
    return fresh.actor;
  }

  private async verify(token: string): Promise<Verified> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw refused("the token is not valid");
    }
    try {
      if (alg === "HS256" && this.secretKey) {
        const { payload } = await jwtVerify(token, this.secretKey, {
          algorithms: ["HS256"],
          currentDate: this.clock.now(),
        });
        // The shared-secret contract: one role, a string, in `role` (arrays are the providers' way).
        if (typeof payload.role !== "string") throw refused("the token's role must be customer or admin");
        return verifiedActor(payload, roleOf(payload.role));
      }
      if (alg && ASYMMETRIC.includes(alg) && this.keySet && this.options.jwks) {
        const { issuer, audience, roleClaim } = this.options.jwks;
        const { payload } = await jwtVerify(token, this.keySet, {
          algorithms: ASYMMETRIC,
          issuer,
          audience,
          requiredClaims: ["exp", "sub"],
          currentDate: this.clock.now(),
        });
        return verifiedActor(payload, roleOf(claimAt(payload, roleClaim ?? "role")));
      }
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw refused("the token has expired");
      if (error instanceof joseErrors.JWKSTimeout || (error as Error)?.name === "TypeError")
        throw refused("the identity provider's keys could not be fetched");
      throw refused("the token is not valid");
    }
    throw refused(`tokens signed ${alg ?? "without an algorithm"} are not accepted`);
  }

  private stillValid(v: Verified): boolean {
    const now = Math.floor(this.clock.now().getTime() / 1000);
    return (v.exp === undefined || now < v.exp) && (v.nbf === undefined || now >= v.nbf);
  }
}

function verifiedActor(payload: JWTPayload, role: Role): Verified {
  const { sub } = payload;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 200) throw refused("the token has no valid sub");
  return { actor: { kind: "user", id: sub, role }, exp: payload.exp, nbf: payload.nbf };
}

/** The claim at a dotted path (realm_access.roles). */
function claimAt(payload: JWTPayload, path: string): unknown {
  return path
    .split(".")
    .reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], payload);
}

/** A role claim: a string or an array of strings; admin wins over customer; neither is refused. */
function roleOf(claim: unknown): Role {
  const values = Array.isArray(claim) ? claim : [claim];
  if (values.includes("admin")) return "admin";
  if (values.includes("customer")) return "customer";
  throw refused("the token's role must be customer or admin");
}

const base64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/**
 * An HS256 token signed with JWT_SECRET, for development and tests (`npm run token`, the
 * storefront's demo sign-in). Synchronous on purpose; verification is jose's (TokenVerifier).
 */
export function signToken(secret: string, sub: string, role: Role, expiresInSeconds = 60 * 60 * 24): string {
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${base64url(
    JSON.stringify({ sub, role, iat: now, exp: now + expiresInSeconds }),
  )}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}
