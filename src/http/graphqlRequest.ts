import { getOperationAST, parse, type OperationTypeNode } from "graphql";
import type { ResolvedDocument } from "../graphql/trustedDocuments";

// What the HTTP layer reads of a GraphQL request before Apollo sees it: the document it names
// (resolved by the trusted documents, then handed to Apollo as plain text), and its operation's
// type (for the early refusal of a rate-limited mutation).

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

/** Operation types of documents sent as text, parsed once each (Apollo keeps its own parses). */
const operationTypes = new Map<string, OperationTypeNode | undefined>();

/** The type of the operation a request runs: known for a trusted document, else parsed (and remembered). */
export function operationTypeOf(
  document: ResolvedDocument,
  operationName: string | undefined,
): OperationTypeNode | undefined {
  if (document.trusted) return document.trusted.operation;
  const key = `${operationName ?? ""}\n${document.query}`;
  if (operationTypes.has(key)) return operationTypes.get(key);
  let type: OperationTypeNode | undefined;
  try {
    type = getOperationAST(parse(document.query, { maxTokens: MAX_QUERY_TOKENS }), operationName)?.operation;
  } catch {
    type = undefined; // Apollo answers the parse error
  }
  if (operationTypes.size >= 1000) operationTypes.clear();
  operationTypes.set(key, type);
  return type;
}
