import jwt from "jsonwebtoken";
import { AppError } from "../shared/errors";
import { anonymous, type Actor, type Role } from "../shared/auth";

const ROLES: readonly Role[] = ["customer", "admin"];

/** `Bearer <JWT HS256>` → actor. No header: anonymous. A header that does not verify: UNAUTHENTICATED. */
export function actorFromAuthorization(header: unknown, secret: string): Actor {
  if (header === undefined || header === null || header === "") return anonymous;
  if (typeof header !== "string") throw new AppError("UNAUTHENTICATED", "authorization must be a string");
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw new AppError("UNAUTHENTICATED", "authorization must be 'Bearer <token>'");
  let claims: jwt.JwtPayload | string;
  try {
    claims = jwt.verify(match[1]!, secret, { algorithms: ["HS256"] });
  } catch (error) {
    const expired = error instanceof jwt.TokenExpiredError;
    throw new AppError("UNAUTHENTICATED", expired ? "the token has expired" : "the token is not valid");
  }
  if (typeof claims === "string") throw new AppError("UNAUTHENTICATED", "the token is not valid");
  const { sub, role } = claims;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 200) throw new AppError("UNAUTHENTICATED", "the token has no valid sub");
  if (!ROLES.includes(role as Role)) throw new AppError("UNAUTHENTICATED", "the token's role must be customer or admin");
  return { kind: "user", id: sub, role: role as Role };
}

export function signToken(secret: string, sub: string, role: Role, expiresInSeconds = 60 * 60 * 24): string {
  return jwt.sign({ sub, role }, secret, { algorithm: "HS256", expiresIn: expiresInSeconds });
}
