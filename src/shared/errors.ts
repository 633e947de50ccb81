/** The error codes this API sends in GraphQL `extensions.code`: the contract's (CONTRACT.md), and those the README adds. */
export type ErrorCode =
  | "BAD_USER_INPUT"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "OUT_OF_STOCK"
  | "CONFLICT"
  | "INVALID_STATE"
  | "RATE_LIMITED"
  | "NOT_SERVED"
  | "OVERLOADED"
  // A query-side statement cancelled (QUERY_STATEMENT_TIMEOUT_MS), a subscription over its socket's limit:
  | "QUERY_TIMEOUT"
  | "LIMIT_EXCEEDED"
  // The request itself (its body, or the document it names), refused before any GraphQL runs:
  | "BAD_REQUEST"
  | "PERSISTED_QUERY_NOT_FOUND"
  | "TRUSTED_DOCUMENT_REQUIRED";

/** An expected failure: shown to the client as is, with its code. Anything else is INTERNAL_SERVER_ERROR. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const badInput = (message: string, details?: Record<string, unknown>) =>
  new AppError("BAD_USER_INPUT", message, details);
export const notFound = (message: string, details?: Record<string, unknown>) =>
  new AppError("NOT_FOUND", message, details);
export const conflict = (message: string, details?: Record<string, unknown>) =>
  new AppError("CONFLICT", message, details);
export const invalidState = (message: string, details?: Record<string, unknown>) =>
  new AppError("INVALID_STATE", message, details);
export const outOfStock = (message: string, details?: Record<string, unknown>) =>
  new AppError("OUT_OF_STOCK", message, details);

/** Walks an error and its causes (Prisma wraps driver errors) looking for a Postgres SQLSTATE. */
export function sqlState(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === "object" && !seen.has(current)) {
    seen.add(current);
    const e = current as {
      code?: unknown;
      originalCode?: unknown;
      cause?: unknown;
      meta?: { driverAdapterError?: unknown };
    };
    if (typeof e.originalCode === "string" && /^[0-9A-Z]{5}$/.test(e.originalCode)) return e.originalCode;
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code) && !e.code.startsWith("P")) return e.code;
    current = e.meta?.driverAdapterError ?? e.cause;
  }
  return undefined;
}

/** Serialization failure or deadlock: the transaction can be retried from the start. */
export function isRetryableTransactionError(error: unknown): boolean {
  const state = sqlState(error);
  if (state === "40001" || state === "40P01") return true;
  return (error as { code?: unknown })?.code === "P2034";
}

/** The database connection failed or was cut (or the database is shutting down or out of resources). */
export function isConnectionError(error: unknown): boolean {
  const state = sqlState(error);
  if (state && (state.startsWith("08") || state.startsWith("57P") || state.startsWith("53"))) return true;
  const code = (error as { code?: unknown })?.code;
  if (code === "P1001" || code === "P1017" || code === "P2028" || code === "ECONNREFUSED" || code === "ECONNRESET")
    return true;
  const message = String((error as Error)?.message ?? "");
  return /Connection terminated|connection (is )?closed|ECONNREFUSED|ECONNRESET|terminating connection|Client has encountered a connection error|not queryable|Query read timeout|timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(
    message,
  );
}
