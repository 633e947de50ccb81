// The API of the server that holds the embedded database (one process owns a PGlite folder), for
// the operator scripts, which go through it instead: the seed and `projections status` send the
// storefront's trusted documents by id to http://127.0.0.1:$PORT/graphql; verify, a rebuild and a
// retry ask the server to run them (POST /operator/<command>). Always as an admin signed with
// JWT_SECRET.
import { request as httpRequest } from "node:http";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { ConfigError, type Config } from "../src/config";
import type { EmbeddedDatabaseInUse } from "../src/db/pglite";
import { signToken } from "../src/http/auth";
import type { OperatorOutcome } from "../src/operator/commands";

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
  /**
   * Runs an operator command on that server and answers its outcome. Waits as long as it runs
   * (a rebuild of a large log takes minutes): no deadline, unlike fetch's 5 minutes.
   */
  operator(command: "verify" | "rebuild" | "retry", body: Record<string, unknown>): Promise<OperatorOutcome>;
}

export function serverApi(config: Config, inUse: EmbeddedDatabaseInUse, subject: string): ServerApi {
  const url = `http://127.0.0.1:${config.port}/graphql`;
  if (!config.jwtSecret)
    throw new ConfigError(
      `${inUse.message}; to go through its API an admin token is signed with JWT_SECRET, and none is set`,
    );
  const authorization = `Bearer ${signToken(config.jwtSecret, subject, "admin", 300)}`;
  const failureAt = (at: string, what: string, errors: ApiErrors = []) =>
    new ScriptFailure(`${what} at ${at}: ${errors.map((e) => `${e.message} (${e.extensions?.code})`).join("; ")}`);
  const unreachable = (at: string, error: unknown) =>
    new ScriptFailure(
      `${inUse.message}. No API answers at ${at} (${String((error as Error).cause ?? error)}): set PORT to the port that server serves`,
    );
  const api: ServerApi = {
    url,
    async request<T, V>(document: TypedDocumentNode<T, V>, variables: V) {
      const documentId = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization },
        body: JSON.stringify({ documentId, variables }),
      }).catch((error: unknown) => {
        throw unreachable(url, error);
      });
      return (await res.json()) as { data?: T; errors?: ApiErrors };
    },
    async data<T, V>(document: TypedDocumentNode<T, V>, variables: V, what: string) {
      const { data, errors } = await api.request(document, variables);
      if (!data) throw api.failure(`${what} failed`, errors);
      return data;
    },
    failure: (what, errors) => failureAt(url, what, errors),
    operator(command, body) {
      const at = `http://127.0.0.1:${config.port}/operator/${command}`;
      const text = JSON.stringify(body);
      return new Promise((resolve, reject) => {
        const req = httpRequest(
          at,
          {
            method: "POST",
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text), authorization },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("error", reject);
            res.on("end", () => {
              let answer: (OperatorOutcome & { errors?: ApiErrors }) | undefined;
              try {
                answer = JSON.parse(Buffer.concat(chunks).toString("utf8")) as OperatorOutcome & { errors?: ApiErrors };
              } catch {
                answer = undefined;
              }
              if (res.statusCode === 200 && answer && typeof answer.report === "string") resolve(answer);
              else reject(failureAt(at, `${command} failed (HTTP ${res.statusCode})`, answer?.errors));
            });
          },
        );
        req.on("error", (error) => reject(unreachable(at, error)));
        req.end(text);
      });
    },
  };
  return api;
}
