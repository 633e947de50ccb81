import type { GraphQLFormattedError } from "graphql";
import { AppError, isConnectionError, sqlState, type ErrorCode } from "../shared/errors";

/**
 * Every error leaves with an `extensions.code`: the contract's codes for expected failures,
 * GraphQL's own for parse/validation, INTERNAL_SERVER_ERROR (message hidden) for the rest.
 */
export function makeFormatError(onInternal: (error: unknown) => void) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError =>
    formatError(formatted, error, onInternal);
}

function formatError(
  formatted: GraphQLFormattedError,
  error: unknown,
  onInternal: (error: unknown) => void,
): GraphQLFormattedError {
  // Not `instanceof GraphQLError`: graphql may be loaded twice (ESM and CJS builds).
  const original = (error as { originalError?: unknown } | null)?.originalError ?? error;
  if (original instanceof AppError) {
    return { ...formatted, message: original.message, extensions: { ...original.details, code: original.code } };
  }
  const validation = (
    original as {
      validationErrors?: { property: string; constraints?: Record<string, string>; children?: unknown[] }[];
    }
  )?.validationErrors;
  if (original instanceof Error && original.name === "ArgumentValidationError" && validation) {
    return {
      ...formatted,
      message: "invalid input",
      extensions: { code: "BAD_USER_INPUT", validationErrors: flattenValidation(validation) },
    };
  }
  // Text Postgres cannot store (a NUL character in a string argument): the client's input is at fault.
  const state = sqlState(original);
  if (state === "22021" || state === "22P05") {
    return {
      ...formatted,
      message: "a text value contains a character that cannot be stored (e.g. NUL)",
      extensions: { code: "BAD_USER_INPUT" },
    };
  }
  // A statement of the query side cancelled by the server (QUERY_STATEMENT_TIMEOUT_MS).
  if (state === "57014") {
    return {
      message: "the query ran longer than this API allows and was cancelled: ask for less, or retry later",
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: "QUERY_TIMEOUT" satisfies ErrorCode, retryable: true },
    };
  }
  const code = formatted.extensions?.code;
  if (typeof code === "string" && code !== "INTERNAL_SERVER_ERROR") return formatted;
  onInternal(original);
  // A cut database connection: the outcome of a mutation is unknown, and a retry with the same
  // idempotency key is the safe way to learn it.
  if (isConnectionError(original)) {
    return {
      message: "the database connection failed; the outcome is unknown: retry with the same idempotencyKey",
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: "INTERNAL_SERVER_ERROR", retryable: true },
    };
  }
  return {
    message: "internal server error",
    locations: formatted.locations,
    path: formatted.path,
    extensions: { code: "INTERNAL_SERVER_ERROR" },
  };
}

interface ValidationErrorLike {
  property: string;
  constraints?: Record<string, string>;
  children?: unknown[];
}

function flattenValidation(errors: ValidationErrorLike[], prefix = ""): { field: string; messages: string[] }[] {
  return errors.flatMap((e) => {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    const own = e.constraints ? [{ field, messages: Object.values(e.constraints) }] : [];
    return [...own, ...flattenValidation((e.children ?? []) as ValidationErrorLike[], field)];
  });
}
