import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { getOperationAST, Kind, parse, type OperationTypeNode } from "graphql";
import { AppError } from "../shared/errors";
import type { Actor } from "../shared/auth";

/**
 * TRUSTED_DOCUMENTS: `off` runs any document; `allow` runs any too, and counts the ones not in
 * the manifest (what `only` would refuse); `only` refuses a non-admin's document unless the
 * manifest holds it. Known ids resolve in every mode.
 */
export const TRUSTED_DOCUMENTS_MODES = ["off", "allow", "only"] as const;
export type TrustedDocumentsMode = (typeof TRUSTED_DOCUMENTS_MODES)[number];

/** The manifest codegen writes beside the storefront's typed documents (codegen.ts): id → document. */
export const MANIFEST_PATH = new URL("../../src/storefront/generated/persisted-documents.json", import.meta.url);

/** The root fields anyone may read and that answer the same to everyone: a CDN may keep them. */
const PUBLIC_CATALOG_FIELDS = new Set(["products", "product", "__typename"]);

export interface TrustedDocument {
  id: string;
  text: string;
  /** A query of the public catalog only: the same answer for every caller. */
  publicCatalog: boolean;
  operation: OperationTypeNode | undefined;
}

/** What a request asks to run: the text of a document of the manifest (trusted) or its own. */
export interface ResolvedDocument {
  query: string;
  trusted: TrustedDocument | undefined;
}

/** The ways a request can name a document: GraphQL over HTTP's `documentId`, or Apollo's persisted-query extension. */
export interface DocumentRequest {
  query?: unknown;
  documentId?: unknown;
  extensions?: unknown;
}

const sha256Id = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

function idOf(request: DocumentRequest): string | undefined {
  if (request.documentId !== undefined && request.documentId !== null) {
    if (typeof request.documentId !== "string" || request.documentId === "")
      throw new AppError("BAD_REQUEST", "documentId must be a non-empty string");
    return request.documentId.includes(":") ? request.documentId : `sha256:${request.documentId}`;
  }
  const persisted = (request.extensions as { persistedQuery?: { sha256Hash?: unknown } } | null | undefined)
    ?.persistedQuery;
  if (persisted === undefined || persisted === null) return undefined;
  if (typeof persisted.sha256Hash !== "string" || !/^[0-9a-f]{64}$/i.test(persisted.sha256Hash))
    throw new AppError("BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be a SHA-256 in hex");
  return `sha256:${persisted.sha256Hash.toLowerCase()}`;
}

/**
 * The documents the storefront and the tests send (their typed documents, by codegen), known by
 * id, and the rule of TRUSTED_DOCUMENTS for the others. Transport-free: HTTP and graphql-ws both
 * resolve a request here before parsing it.
 */
export class TrustedDocuments {
  private readonly byId = new Map<string, TrustedDocument>();

  constructor(
    readonly mode: TrustedDocumentsMode,
    manifest: Record<string, string>,
    /** A non-admin's document outside the manifest: run (`allow`) or refused (`only`). */
    private readonly onUntrusted: (outcome: "accepted" | "refused") => void = () => {},
  ) {
    for (const [id, text] of Object.entries(manifest)) {
      const operation = getOperationAST(parse(text));
      const publicCatalog =
        operation?.operation === "query" &&
        operation.selectionSet.selections.every(
          (s) => s.kind === Kind.FIELD && PUBLIC_CATALOG_FIELDS.has(s.name.value),
        );
      this.byId.set(id, { id, text, publicCatalog, operation: operation?.operation });
    }
  }

  static fromFile(
    mode: TrustedDocumentsMode,
    onUntrusted?: (outcome: "accepted" | "refused") => void,
    path: URL | string = MANIFEST_PATH,
  ): TrustedDocuments {
    return new TrustedDocuments(mode, JSON.parse(readFileSync(path, "utf8")) as Record<string, string>, onUntrusted);
  }

  /**
   * The document a request runs. A known id runs the manifest's text; a query sent along with an
   * id must be that document (its SHA-256). Text alone runs as sent, unless the mode is `only` and
   * the actor is not an admin. An unknown id without text is PERSISTED_QUERY_NOT_FOUND (Apollo's
   * code: its clients then send the text).
   */
  resolve(request: DocumentRequest, actor: Actor): ResolvedDocument {
    const id = idOf(request);
    const text = typeof request.query === "string" && request.query !== "" ? request.query : undefined;
    if (id !== undefined && text !== undefined && sha256Id(text) !== id)
      throw new AppError("BAD_REQUEST", "the query sent is not the document its id names (SHA-256 of the query)");
    // Text alone may be a manifest document sent exactly: looked up, unless nothing is enforced.
    const lookupId = id ?? (text !== undefined && this.mode !== "off" ? sha256Id(text) : undefined);
    const known = lookupId === undefined ? undefined : this.byId.get(lookupId);
    if (known) return { query: known.text, trusted: known };
    if (text === undefined) {
      if (id !== undefined) throw new AppError("PERSISTED_QUERY_NOT_FOUND", `no trusted document has the id ${id}`);
      return { query: "", trusted: undefined }; // no document at all: GraphQL's own error says so
    }
    if (this.mode !== "off" && !(actor.kind === "user" && actor.role === "admin")) {
      this.onUntrusted(this.mode === "only" ? "refused" : "accepted");
      if (this.mode === "only")
        throw new AppError(
          "TRUSTED_DOCUMENT_REQUIRED",
          "this API runs trusted documents only: send the documentId of a document of its manifest instead of the query text",
        );
    }
    return { query: text, trusted: undefined };
  }
}
