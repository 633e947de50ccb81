import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { devToken, serveIde, serveStorefront } from "./storefront";
import { acceptedEncodings, addVary, compressBody, contentHash, notModified, representationTag } from "./encoding";
import { ApolloServer, HeaderMap } from "@apollo/server";
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "../logger";
import { AppError } from "../shared/errors";
import type { Actor } from "../shared/auth";
import type { GraphQLContext, Services } from "../graphql/context";
import { makeFormatError } from "../graphql/errors";
import { complexityLimit, depthLimit } from "../graphql/limits";
import { RETRY_LATER_STATUS, retryLaterStatus, subscriptionsOnlyOverWebSocket } from "../graphql/httpOperations";
import { rateLimited } from "../graphql/rateLimit";
import { servedOperationsOnly } from "../graphql/servedOperations";
import { SERVICES, type Service } from "../config";
import { TokenVerifier, type AuthOptions } from "./auth";
import type { SocketLimits } from "./socketLimits";
import { serveGraphQLOverWebSocket } from "./websocket";
import { TrustedDocuments, type ResolvedDocument } from "../graphql/trustedDocuments";
import {
  hasPersistedQuery,
  isObject,
  MAX_QUERY_TOKENS,
  operationNameOf,
  operationTypeOf,
  otherExtensions,
  withDocument,
} from "./graphqlRequest";
import type { Metrics } from "./metrics";
import type { OperatorCommands } from "../operator/commands";
import { BodyError, errorBody, readBody, sendBodyError, sendJson } from "./json";
import { handleOperator } from "./operator";

export interface HttpOptions {
  schema: GraphQLSchema;
  services: Services;
  /** The operation types this instance serves (SERVICES); the others answer NOT_SERVED. Default: all. */
  served?: ReadonlySet<Service>;
  /** How tokens are verified: JWT_SECRET (HS256) and/or an identity provider's JWKS. */
  auth: AuthOptions;
  maxQueryDepth: number;
  maxQueryComplexity: number;
  logger: Logger;
  metrics: Metrics;
  /** /readyz: null when ready, else the reason. */
  readiness: () => Promise<string | null>;
  /** The built storefront, served at GET / (none: GET / is a 404). */
  storefrontDir?: string;
  /** POST /dev/token mints demo tokens (never when NODE_ENV=production). */
  devTokens?: boolean;
  /** Origins allowed to call /graphql from a browser page (CORS_ORIGINS); none: same origin only. */
  corsOrigins?: readonly string[];
  /** The manifest of trusted documents and TRUSTED_DOCUMENTS' rule (default: off, the manifest still resolves ids). */
  trustedDocuments?: TrustedDocuments;
  /** max-age of a GET of a trusted public catalog query (0 or unset: no-store, like every other answer). */
  catalogCacheSeconds?: number;
  /** GraphQL answers of at least this many bytes (UTF-8) go compressed to clients that accept it (0 or unset: never). */
  compressMinBytes?: number;
  /** Limits on graphql-ws sockets (the configuration's: src/config.ts). */
  socketLimits: SocketLimits;
  /** How long an idle keep-alive connection stays open (default Node's 5 s). */
  keepAliveTimeoutMs?: number;
  /**
   * POST /operator/verify | rebuild | retry, for an admin: the operator commands this server runs
   * for the CLIs, on the embedded database it holds (none: those paths are a 404).
   */
  operator?: OperatorCommands;
}

export interface HttpApp {
  server: Server;
  start(port: number, host?: string): Promise<number>;
  stop(): Promise<void>;
}

/** A mutation refused for a while, before Apollo (RETRY_LATER_STATUS): as retryLaterStatus answers it after. */
function sendRetryLater(res: ServerResponse, refused: AppError, headers: Record<string, string>): void {
  sendJson(res, RETRY_LATER_STATUS[refused.code]!, errorBody(refused.message, refused.code, refused.details), {
    ...headers,
    "retry-after": String(refused.details.retryAfterSeconds),
    "cache-control": "no-store",
  });
}

function correlationIdOf(req: IncomingMessage): string {
  const given = req.headers["x-correlation-id"];
  return typeof given === "string" && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID();
}

/** Apollo Server 5 on Node's http server; graphql-ws on the same port and path. */
export async function createHttpApp(options: HttpOptions): Promise<HttpApp> {
  const { schema, services, logger, metrics } = options;
  const tokens = new TokenVerifier(options.auth);
  const served = options.served ?? new Set(SERVICES);
  const server = createServer();
  // Longer than the idle timeout of whatever keeps connections to us (a load balancer's, 60 s on
  // the usual ones; a client's): then it always closes an idle connection first, and never sends
  // a request on one we are closing at that moment, which it would see as a reset (a 502).
  if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;
  const validationRules = [depthLimit(options.maxQueryDepth)];
  const trusted = options.trustedDocuments ?? TrustedDocuments.fromFile("off");
  const catalogMaxAge = options.catalogCacheSeconds ?? 0;
  const compressMinBytes = options.compressMinBytes ?? 0;
  const formatError = makeFormatError((error) =>
    logger.error({ err: error }, "unexpected error in a GraphQL operation"),
  );

  const webSocket = serveGraphQLOverWebSocket(server, {
    schema,
    services,
    served,
    tokens,
    trusted,
    limits: options.socketLimits,
    validationRules,
    maxQueryComplexity: options.maxQueryComplexity,
    formatError,
    logger,
  });

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    validationRules,
    parseOptions: { maxTokens: MAX_QUERY_TOKENS },
    formatError,
    includeStacktraceInErrorResponses: false,
    // main.ts owns SIGTERM/SIGINT (server, projector, database, in order). Apollo's own handler
    // would call stop() concurrently with ours, and Apollo 5's stop() never releases a
    // concurrent caller (its barrier is only resolved on failure): shutdown hung until the
    // 10 s force-exit, with exit code 1.
    stopOnTerminationSignals: false,
    introspection: true,
    // Ids of documents resolve against the manifest of trusted documents (resolveDocument), never
    // against a cache that any client can fill, as Apollo's automatic persisted queries are.
    persistedQueries: false,
    plugins: [
      // The schema has no cache hints, so every answer is "no-store" (set in handleGraphQL);
      // Apollo's cache-control plugin would wrap every field's resolver to learn that.
      ApolloServerPluginCacheControlDisabled(),
      // Apollo's landing page loads from a CDN: browsers get the IDE built with the storefront (serveIde).
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer: server }),
      complexityLimit(options.maxQueryComplexity),
      subscriptionsOnlyOverWebSocket(),
      retryLaterStatus(),
      servedOperationsOnly(served),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await webSocket.dispose();
            },
          };
        },
      },
    ],
  });
  await apollo.start();

  async function handleGraphQL(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const correlationId = correlationIdOf(req);
    const baseHeaders = { "x-correlation-id": correlationId };
    // Only the query string is read (a GET names its document there), not a whole URL parsed.
    const target = req.url ?? "/";
    const query = target.indexOf("?");
    const params = new URLSearchParams(query < 0 ? "" : target.slice(query + 1));
    let actor: Actor;
    let body: unknown;
    let document: ResolvedDocument | undefined;
    try {
      actor = await tokens.actorOf(req.headers.authorization);
    } catch (error) {
      if (error instanceof AppError) return sendJson(res, 401, errorBody(error.message, error.code), baseHeaders);
      throw error;
    }
    try {
      if (req.method === "POST") {
        const text = await readBody(req);
        try {
          body = JSON.parse(text);
        } catch {
          throw new BodyError(400, "BAD_REQUEST", "request body is not valid JSON");
        }
        if (isObject(body)) {
          document = trusted.resolve(body, actor);
          body = withDocument(body, document.query);
        }
      } else if (req.method === "GET") {
        document = resolveFromSearch(params, actor);
      }
    } catch (error) {
      if (error instanceof AppError) return sendJson(res, 400, errorBody(error.message, error.code), baseHeaders);
      if (error instanceof BodyError) return sendBodyError(res, error, baseHeaders);
      throw error;
    }
    // A mutation sure to be refused for its actor's rate is refused here, before Apollo (a JSON
    // parse per request, not a GraphQL execution), and answered after a pause of up to a second
    // (a tarpit: the client has that long to wait anyway), so a client that floods from many
    // connections gets a few answers a second, not thousands, and the others keep the instance.
    const wait = document && actor.kind === "user" ? (services.mutationLimit?.peek(actor.id) ?? 0) : 0;
    const isMutation = () => operationTypeOf(document!, operationNameOf(body, params)) === "mutation";
    if (wait > 0 && isMutation()) {
      await sleep(Math.min(1000, wait * 1000) * (0.75 + Math.random() / 4)); // jittered: no waves of retries
      return sendRetryLater(res, rateLimited(wait), baseHeaders);
    }
    // A mutation the command bus would shed (its write database's queue is standing) is refused
    // here too: the GraphQL work of what is refused anyway would only load the main thread more.
    const bus = services.bus;
    if (document && actor.kind === "user" && bus?.overloaded() && isMutation())
      return sendRetryLater(res, bus.shed(), baseHeaders);
    // A GET of a trusted query of the public catalog, without a token: the same answer for
    // everyone, and no side effect for a cross-site request to cause, so a CDN may keep it.
    const cacheable =
      req.method === "GET" && actor.kind === "anonymous" && !!document?.trusted?.publicCatalog && catalogMaxAge > 0;
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers))
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(", ") : value);
    if (cacheable) headers.set("apollo-require-preflight", "true"); // Apollo's CSRF check: see just above
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? "GET", headers, search: params.size > 0 ? `?${params}` : "", body },
      context: async () => ({ actor, correlationId, services }),
    });
    // Apollo's Vary joins ours (CORS varies on the origin).
    for (const [key, value] of response.headers) {
      if (key === "vary") addVary(res, value);
      else res.setHeader(key, value);
    }
    res.setHeader("x-correlation-id", correlationId);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === "complete") {
      const text = response.body.string;
      // An answer this large goes compressed to a client that accepts it (br, else gzip); it varies
      // with Accept-Encoding then, whichever way it goes, for the caches between.
      // (In UTF-8 a string has at least as many bytes as UTF-16 units: only a shorter one is measured.)
      const compressible =
        compressMinBytes > 0 && (text.length >= compressMinBytes || Buffer.byteLength(text) >= compressMinBytes);
      const encoding = compressible ? acceptedEncodings(req.headers["accept-encoding"])[0] : undefined;
      if (compressible) addVary(res, "accept-encoding");
      if (cacheable && res.statusCode === 200 && !text.includes('"errors":')) {
        const etag = representationTag(contentHash(text), encoding);
        res.setHeader("cache-control", `public, max-age=${catalogMaxAge}`);
        res.setHeader("etag", etag);
        if (notModified(req.headers["if-none-match"], etag)) {
          res.statusCode = 304;
          res.removeHeader("content-length");
          res.end();
          return;
        }
      } else if (!response.headers.has("cache-control")) res.setHeader("cache-control", "no-store");
      if (!encoding) {
        res.end(text);
        return;
      }
      const body = await compressBody(text, encoding);
      res.setHeader("content-encoding", encoding);
      res.setHeader("content-length", body.length);
      res.end(body);
      return;
    }
    if (!response.headers.has("cache-control")) res.setHeader("cache-control", "no-store");
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  }

  /** A GET names its document in the query string (query, documentId, extensions): resolved in place. */
  function resolveFromSearch(params: URLSearchParams, actor: Actor): ResolvedDocument | undefined {
    const rawExtensions = params.get("extensions");
    let extensions: unknown;
    try {
      extensions = rawExtensions ? JSON.parse(rawExtensions) : undefined;
    } catch {
      throw new BodyError(400, "BAD_REQUEST", "the extensions parameter is not valid JSON");
    }
    const request = { query: params.get("query") ?? undefined, documentId: params.get("documentId") ?? undefined };
    if (request.query === undefined && request.documentId === undefined && !hasPersistedQuery(extensions))
      return undefined; // no document at all: Apollo's own error says so
    const document = trusted.resolve({ ...request, extensions }, actor);
    params.set("query", document.query);
    params.delete("documentId");
    const others = otherExtensions(extensions);
    if (others === undefined) params.delete("extensions");
    else params.set("extensions", JSON.stringify(others));
    return document;
  }

  const allowedOrigins = new Set(options.corsOrigins ?? []);
  /**
   * CORS for the origins of CORS_ORIGINS only: their requests get Access-Control-Allow-Origin,
   * and their preflights a 204. Another origin's preflight gets 403 (its browser then sends
   * nothing). True when the request is answered here (a preflight).
   */
  function cors(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    const allowed = typeof origin === "string" && allowedOrigins.has(origin);
    if (allowed) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("vary", "origin");
    }
    if (req.method !== "OPTIONS" || !req.headers["access-control-request-method"]) return false;
    if (!allowed) {
      res.writeHead(403).end();
      return true;
    }
    res.writeHead(204, {
      "access-control-allow-methods": "GET, POST, OPTIONS",
      "access-control-allow-headers": "authorization, content-type, apollo-require-preflight, x-apollo-operation-name",
      "access-control-max-age": "600",
    });
    res.end();
    return true;
  }

  server.on("request", (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const route = async () => {
      switch (path) {
        case "/graphql":
          if (cors(req, res)) return;
          if (options.storefrontDir && (await serveIde(options.storefrontDir, req, res))) return;
          return handleGraphQL(req, res);
        case "/healthz":
          return sendJson(res, 200, { status: "ok" });
        case "/readyz": {
          const reason = await options.readiness();
          return sendJson(res, reason ? 503 : 200, reason ? { status: "not ready", reason } : { status: "ready" });
        }
        case "/metrics": {
          const text = await metrics.registry.metrics();
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(text);
          return;
        }
        case "/dev/token": {
          const secret = options.auth.secret;
          if (!options.devTokens || !secret) return sendJson(res, 404, { error: "not found" });
          if (req.method !== "POST") return sendJson(res, 405, { error: "POST a JSON body" }, { allow: "POST" });
          let minted: { token: string } | undefined;
          try {
            minted = devToken(secret, JSON.parse(await readBody(req)));
          } catch {
            minted = undefined;
          }
          return minted
            ? sendJson(res, 200, minted, { "cache-control": "no-store" })
            : sendJson(res, 400, { error: 'POST {"role": "customer" | "admin", "sub"?: string}' });
        }
        case "/operator/verify":
        case "/operator/rebuild":
        case "/operator/retry":
          return handleOperator(req, res, path, { operator: options.operator, tokens, logger });
        case "/favicon.ico":
          res.writeHead(204).end();
          return;
        default:
          if (options.storefrontDir && (await serveStorefront(options.storefrontDir, req, res))) return;
          return sendJson(res, 404, { error: "not found" });
      }
    };
    route().catch((error: unknown) => {
      logger.error({ err: error, path }, "request failed");
      if (!res.headersSent) sendJson(res, 500, errorBody("internal server error", "INTERNAL_SERVER_ERROR"));
      else res.end();
    });
  });

  return {
    server,
    start(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const address = server.address();
          resolve(typeof address === "object" && address ? address.port : port);
        });
      });
    },
    async stop() {
      await apollo.stop(); // drains HTTP connections and disposes graphql-ws
      webSocket.close();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
