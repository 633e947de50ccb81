import { print, type DocumentNode, type ExecutionResult } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { signToken } from "../../src/http/auth";
import type { Role } from "../../src/shared/auth";

export const TEST_JWT_SECRET = "test-secret-0123456789-0123456789-abcdef";

export function token(role: Role, sub: string, secret = TEST_JWT_SECRET, expiresInSeconds = 3600): string {
  return signToken(secret, sub, role, expiresInSeconds);
}

/**
 * How a request names its document: by the id codegen gave it (the storefront's way, so the
 * tests pass under TRUSTED_DOCUMENTS=only), or as text when it has none.
 */
export function documentOf(document: DocumentNode): { documentId: string } | { query: string } {
  const id = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  return id ? { documentId: id } : { query: print(document) };
}

export interface GqlError {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
}

export interface GqlResponse<T> {
  status: number;
  data: T | null | undefined;
  errors: GqlError[] | undefined;
}

/** A GraphQL-over-HTTP client for one API instance, with typed documents from codegen. */
export class GraphQLClient {
  constructor(
    readonly baseUrl: string,
    private readonly bearer?: string,
  ) {}

  as(bearer: string | undefined): GraphQLClient {
    return new GraphQLClient(this.baseUrl, bearer);
  }

  async request<T, V>(
    document: TypedDocumentNode<T, V>,
    variables?: V,
    headers: Record<string, string> = {},
  ): Promise<GqlResponse<T>> {
    return this.raw(JSON.stringify({ ...documentOf(document), variables }), headers) as Promise<GqlResponse<T>>;
  }

  /** Succeeds or throws with the errors: for steps that are not what the test is about. */
  async ok<T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<T> {
    const res = await this.request(document, variables);
    if (res.errors?.length || !res.data) throw new Error(`GraphQL request failed: ${JSON.stringify(res.errors)}`);
    return res.data;
  }

  async raw(body: string | Buffer, headers: Record<string, string> = {}): Promise<GqlResponse<unknown>> {
    const res = await fetch(`${this.baseUrl}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(this.bearer ? { authorization: `Bearer ${this.bearer}` } : {}),
        ...headers,
      },
      body,
    });
    const text = await res.text();
    let parsed: { data?: unknown; errors?: GqlError[] } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      parsed = { errors: [{ message: text }] };
    }
    return { status: res.status, data: parsed.data, errors: parsed.errors };
  }

  ws(): Client {
    return createClient({
      url: `${this.baseUrl.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: this.bearer ? { authorization: `Bearer ${this.bearer}` } : {},
      retryAttempts: 0,
      lazy: true,
    });
  }
}

/** Subscribes and collects every pushed result, so a test can wait on what arrived. */
export function collect<T, V>(client: Client, document: TypedDocumentNode<T, V>, variables: V) {
  const results: ExecutionResult<T>[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const unsubscribe = client.subscribe<T>(
    { query: "", ...documentOf(document), variables: variables as Record<string, unknown> },
    {
      next: (r) => void results.push(r as ExecutionResult<T>),
      error: (e) => void errors.push(e),
      complete: () => void (completed = true),
    },
  );
  return {
    results,
    errors,
    get completed() {
      return completed;
    },
    unsubscribe,
  };
}

/** The value of an unlabelled sample of an instance's /metrics (NaN when it has none). */
export async function metricOf(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
}
