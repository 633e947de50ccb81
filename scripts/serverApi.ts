// The API of the server that holds the embedded database (one process owns a PGlite folder), for
// the operator scripts that can go through it instead: the seed and `projections status`. Sends
// the storefront's trusted documents by id, as an admin signed with JWT_SECRET, to
// http://127.0.0.1:$PORT/graphql.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { ConfigError, type Config } from "../src/config";
import type { EmbeddedDatabaseInUse } from "../src/db/pglite";
import { signToken } from "../src/http/auth";

/** A failure the user fixes (no API at PORT, the API refused): the scripts say it in one line. */
export class ScriptFailure extends Error {}

export type ApiErrors = Array<{ message: string; extensions?: { code?: string } }>;

export interface ServerApi {
  url: string;
  /** The answer as it is, errors included. */
  request<T, V>(document: TypedDocumentNode<T, V>, variables: V): Promise<{ data?: T; errors?: ApiErrors }>;
  /** The data, or a ScriptFailure naming `what` and the errors. */
  data<T, V>(document: TypedDocumentNode<T, V>, variables: V, what: string): Promise<T>;
  failure(what: string, errors?: ApiErrors): ScriptFailure;
}

export function serverApi(config: Config, inUse: EmbeddedDatabaseInUse, subject: string): ServerApi {
  const url = `http://127.0.0.1:${config.port}/graphql`;
  if (!config.jwtSecret)
    throw new ConfigError(
      `${inUse.message}; to go through its API an admin token is signed with JWT_SECRET, and none is set`,
    );
  const authorization = `Bearer ${signToken(config.jwtSecret, subject, "admin", 300)}`;
  const api: ServerApi = {
    url,
    async request<T, V>(document: TypedDocumentNode<T, V>, variables: V) {
      const documentId = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization },
        body: JSON.stringify({ documentId, variables }),
      }).catch((error: unknown) => {
        throw new ScriptFailure(
          `${inUse.message}. No API answers at ${url} (${String((error as Error).cause ?? error)}): set PORT to the port that server serves`,
        );
      });
      return (await res.json()) as { data?: T; errors?: ApiErrors };
    },
    async data<T, V>(document: TypedDocumentNode<T, V>, variables: V, what: string) {
      const { data, errors } = await api.request(document, variables);
      if (!data) throw api.failure(`${what} failed`, errors);
      return data;
    },
    failure: (what, errors = []) =>
      new ScriptFailure(`${what} at ${url}: ${errors.map((e) => `${e.message} (${e.extensions?.code})`).join("; ")}`),
  };
  return api;
}
