import { getOperationAST, GraphQLError, parse, type DocumentNode, type OperationTypeNode } from "graphql";
import type { ResolvedDocument } from "../graphql/trustedDocuments";

// What the HTTP layer reads of a GraphQL request before Apollo sees it: the document it names
// (resolved by the trusted documents, then handed to Apollo as plain text), and its operation's
// type (for the early refusal of a rate-limited mutation). The parse of a document's text,
// remembered, serves graphql-ws too, which has no Apollo to keep one.

/**
 * graphql-js parses recursively: a document nested a few thousand levels deep can overflow the
 * stack in a later pass after the parse itself succeeded (an HTTP 500). A token cap rejects it at
 * parse time with GRAPHQL_PARSE_FAILED; real operations are far smaller (introspection: ~200).
 */
export const MAX_QUERY_TOKENS = 5_000;

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export const hasPersistedQuery = (extensions: unknown) => isObject(extensions) && extensions.persistedQuery != null;

/**
 * A request's extensions without Apollo's persisted query, resolved here (Apollo's own is off and
 * would refuse it); undefined when nothing else is left.
 */
export function otherExtensions(extensions: unknown): unknown {
  if (!isObject(extensions) || !("persistedQuery" in extensions)) return extensions;
  const { persistedQuery: _, ...rest } = extensions;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

/** A request body with the document to run as its query, and the ways of naming it removed (Apollo needs neither). */
export function withDocument(body: Record<string, unknown>, query: string): Record<string, unknown> {
  const { documentId: _, extensions, ...rest } = body;
  const others = otherExtensions(extensions);
  return others === undefined ? { ...rest, query } : { ...rest, query, extensions: others };
}

export const operationNameOf = (body: unknown, search: URLSearchParams): string | undefined => {
  const name = isObject(body) ? body.operationName : search.get("operationName");
  return typeof name === "string" ? name : undefined;
};

/** Parsed documents (or their syntax errors) by text, for what runs outside Apollo (which keeps its own). */
const parsed = new Map<string, DocumentNode | GraphQLError>();
let parsedChars = 0;
/**
 * Text kept, at most: a client can send documents that differ each time, each up to
 * MAX_QUERY_TOKENS; when full the cache starts again (real clients send a few documents, again and again).
 */
export const PARSED_DOCUMENTS_MAX_CHARS = 1_000_000;

/**
 * A document parsed once per text (with the token cap), the same object each time: graphql-ws
 * subscribers that send the same operation parse it once, not once each. Throws the syntax error.
 */
export function parseQuery(query: string): DocumentNode {
  let result = parsed.get(query);
  if (result === undefined) {
    try {
      result = parse(query, { maxTokens: MAX_QUERY_TOKENS });
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      result = error;
    }
    if (query.length <= PARSED_DOCUMENTS_MAX_CHARS) {
      if (parsedChars + query.length > PARSED_DOCUMENTS_MAX_CHARS) {
        parsed.clear();
        parsedChars = 0;
      }
      parsed.set(query, result);
      parsedChars += query.length;
    }
  }
  if (result instanceof GraphQLError) throw result;
  return result;
}

/** The type of the operation a request runs: known for a trusted document, else parsed (once per text). */
export function operationTypeOf(
  document: ResolvedDocument,
  operationName: string | undefined,
): OperationTypeNode | undefined {
  if (document.trusted) return document.trusted.operation;
  try {
    return getOperationAST(parseQuery(document.query), operationName)?.operation;
  } catch {
    return undefined; // Apollo answers the parse error
  }
}
