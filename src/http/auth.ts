import { createSecretKey, type KeyObject } from "node:crypto";
import jwt from "jsonwebtoken";
import { AppError } from "../shared/errors";
import { anonymous, type Actor, type Role } from "../shared/auth";

const ROLES: readonly Role[] = ["customer", "admin"];

// jsonwebtoken first tries to parse a string secret as a PEM public key, which throws, on every
// verify: costly per request. A KeyObject made once skips it.
const secretKeys = new Map<string, KeyObject>();
function secretKey(secret: string): KeyObject {
  let key = secretKeys.get(secret);
  if (!key) secretKeys.set(secret, (key = createSecretKey(Buffer.from(secret, "utf8"))));
  return key;
}

// A client sends the same token with every request: its signature is checked once, then the
// verified actor is remembered (with the token's own time bounds, checked on every use) for up to
// VERIFIED_TOKENS tokens per secret, the oldest forgotten first. Saves an HMAC and a JSON parse
// per request.
const VERIFIED_TOKENS = 10_000;
interface Verified {
  actor: Extract<Actor, { kind: "user" }>;
  /** jsonwebtoken's exp and nbf, in seconds. */
  exp: number | undefined;
  nbf: number | undefined;
}
const verifiedBySecret = new Map<string, Map<string, Verified>>();

function stillValid(v: Verified): boolean {
  const now = Math.floor(Date.now() / 1000); // as jsonwebtoken reckons it
  return (v.exp === undefined || now < v.exp) && (v.nbf === undefined || now >= v.nbf);
}

/** `Bearer <JWT HS256>` → actor. No header: anonymous. A header that does not verify: UNAUTHENTICATED. */
export function actorFromAuthorization(header: unknown, secret: string): Actor {
  if (header === undefined || header === null || header === "") return anonymous;
  if (typeof header !== "string") throw new AppError("UNAUTHENTICATED", "authorization must be a string");
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw new AppError("UNAUTHENTICATED", "authorization must be 'Bearer <token>'");
  const token = match[1]!;
  let verified = verifiedBySecret.get(secret);
  if (!verified) verifiedBySecret.set(secret, (verified = new Map()));
  const known = verified.get(token);
  if (known && stillValid(known)) return known.actor;
  verified.delete(token); // expired (verify below says so) or not seen yet
  const fresh = verify(token, secret);
  if (verified.size >= VERIFIED_TOKENS) verified.delete(verified.keys().next().value!);
  verified.set(token, fresh);
  return fresh.actor;
}

function verify(token: string, secret: string): Verified {
  let claims: jwt.JwtPayload | string;
  try {
    claims = jwt.verify(token, secretKey(secret), { algorithms: ["HS256"] });
  } catch (error) {
    const expired = error instanceof jwt.TokenExpiredError;
    throw new AppError("UNAUTHENTICATED", expired ? "the token has expired" : "the token is not valid");
  }
  if (typeof claims === "string") throw new AppError("UNAUTHENTICATED", "the token is not valid");
  const { sub, role } = claims;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 200)
    throw new AppError("UNAUTHENTICATED", "the token has no valid sub");
  if (!ROLES.includes(role as Role))
    throw new AppError("UNAUTHENTICATED", "the token's role must be customer or admin");
  return { actor: { kind: "user", id: sub, role: role as Role }, exp: claims.exp, nbf: claims.nbf };
}

export function signToken(secret: string, sub: string, role: Role, expiresInSeconds = 60 * 60 * 24): string {
  return jwt.sign({ sub, role }, secret, { algorithm: "HS256", expiresIn: expiresInSeconds });
}
