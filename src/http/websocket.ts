import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import {
  getOperationAST,
  GraphQLError,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationRule,
} from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import type { Logger } from "../logger";
import { AppError, type ErrorCode } from "../shared/errors";
import { anonymous, type Actor } from "../shared/auth";
import type { GraphQLContext, Services } from "../graphql/context";
import { complexityError } from "../graphql/limits";
import { notServed } from "../graphql/servedOperations";
import type { Service } from "../config";
import { pushDirectly, sharedSubscribe } from "../graphql/sharedSubscribe";
import type { TrustedDocuments } from "../graphql/trustedDocuments";
import type { TokenVerifier } from "./auth";
import { clientAddress, SocketCounts, type SocketLimits } from "./socketLimits";
import { parseQuery } from "./graphqlRequest";

/** WebSocket close code 1013, "try again later": graphql-ws clients reconnect after a while. */
const TRY_AGAIN_LATER = 1013;

export interface WebSocketOptions {
  schema: GraphQLSchema;
  services: Services;
  served: ReadonlySet<Service>;
  tokens: TokenVerifier;
  trusted: TrustedDocuments;
  limits: SocketLimits;
  /** Ours, beside graphql-js's own: the same as over HTTP. */
  validationRules: readonly ValidationRule[];
  maxQueryComplexity: number;
  /** The errors' shape and codes, shared with HTTP. */
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  logger: Logger;
}

export interface GraphQLWebSocket {
  /** Completes every subscription and closes the sockets (graphql-ws's dispose). */
  dispose(): Promise<void>;
  /** Stops accepting sockets. */
  close(): void;
}

/**
 * graphql-ws on `server`'s /graphql: subscriptions (and queries and mutations, as the protocol
 * allows) over one socket per client, through the same checks as HTTP: the trusted document,
 * the operation types this instance serves, validation and the complexity limit. Sockets are
 * limited per address and per user, and a push's payload is serialized once per change and
 * operation (sharedSubscribe).
 */
export function serveGraphQLOverWebSocket(server: Server, options: WebSocketOptions): GraphQLWebSocket {
  const {
    schema,
    services,
    served,
    tokens,
    trusted,
    limits,
    validationRules,
    maxQueryComplexity,
    formatError,
    logger,
  } = options;
  // Upgrades are handed over here rather than ws listening on the server itself, which would also
  // pass on the server's own errors (a port in use) for graphql-ws to log as an internal one.
  const wss = new WebSocketServer({ noServer: true, path: "/graphql", maxPayload: limits.messageBytes });
  const upgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
  server.on("upgrade", upgrade);
  // Before graphql-ws sees the socket: one address may hold so many, initialised or not.
  const socketsPerIp = new SocketCounts(limits.socketsPerIp);
  const socketsPerActor = new SocketCounts(limits.socketsPerActor);
  wss.on("connection", (socket, request) => {
    // A frame the client got wrong (over WS_MAX_MESSAGE_BYTES, bad UTF-8, a bad opcode): ws has
    // closed the socket already (1009, 1007, 1002), and graphql-ws would log it as an internal
    // error with console.error, as often as a client cares to send one.
    const emit = socket.emit.bind(socket);
    socket.emit = (event: string | symbol, ...args: unknown[]) => {
      const code = (args[0] as { code?: unknown } | undefined)?.code;
      if (event === "error" && typeof code === "string" && code.startsWith("WS_ERR_")) {
        logger.debug({ code }, "graphql-ws socket closed for a bad frame");
        return true;
      }
      return emit(event, ...args);
    };
    const address = clientAddress(request, limits.trustProxyHops);
    if (!socketsPerIp.open(address)) {
      socket.close(TRY_AGAIN_LATER, `too many sockets from this address (at most ${limits.socketsPerIp})`);
      return;
    }
    socket.once("close", () => socketsPerIp.close(address));
  });
  const withFormattedErrors = <R extends Pick<ExecutionResult, "errors">>(result: R) =>
    result.errors ? { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } : result;
  const serializePayload = (result: ExecutionResult) => JSON.stringify(withFormattedErrors(result));

  /**
   * GraphQL's own validation and ours, labelled as Apollo labels them over HTTP; once per
   * document (parseQuery gives the same object for the same text), as Apollo validates once per text.
   */
  const validated = new WeakMap<DocumentNode, readonly GraphQLError[]>();
  const validateDocument = (document: DocumentNode): readonly GraphQLError[] => {
    let errors = validated.get(document);
    if (errors === undefined) {
      errors = validate(schema, document, [...specifiedRules, ...validationRules]).map(
        (error) =>
          new GraphQLError(error.message, {
            nodes: error.nodes,
            source: error.source,
            positions: error.positions,
            originalError: error.originalError,
            extensions: { ...error.extensions, code: "GRAPHQL_VALIDATION_FAILED" },
          }),
      );
      validated.set(document, errors);
    }
    return errors;
  };

  const cleanup = useServer<Record<string, unknown> | undefined, { actor: Actor }>(
    {
      schema,
      // One execution per change and distinct operation, shared by its subscribers.
      subscribe: sharedSubscribe,
      connectionInitWaitTimeout: limits.connectionInitTimeoutMs,
      async onConnect(ctx) {
        const { socket } = ctx.extra;
        try {
          ctx.extra.actor = await tokens.actorOf(ctx.connectionParams?.authorization);
        } catch {
          socket.close(4401, "Unauthorized"); // a refused token: 4401, as graphql-ws clients expect
          return false;
        }
        const actor = ctx.extra.actor;
        if (actor.kind !== "user") return true;
        const key = `${actor.role}:${actor.id}`;
        if (!socketsPerActor.open(key)) {
          socket.close(TRY_AGAIN_LATER, `too many sockets for this user (at most ${limits.socketsPerActor})`);
          return false;
        }
        socket.once("close", () => socketsPerActor.close(key));
        return true;
      },
      /**
       * Everything HTTP does before executing, in the same order, so the same document fails the
       * same way on both transports: the trusted document it names, the token cap, the operation
       * type this instance serves, validation, the complexity limit (which needs the variables).
       */
      onSubscribe(ctx, _id, payload) {
        // This subscription counts already (graphql-ws registers it before asking).
        if (limits.subscriptionsPerSocket > 0 && Object.keys(ctx.subscriptions).length > limits.subscriptionsPerSocket)
          return [
            new GraphQLError(`too many subscriptions on this socket (at most ${limits.subscriptionsPerSocket})`, {
              extensions: { code: "LIMIT_EXCEEDED" satisfies ErrorCode, limit: limits.subscriptionsPerSocket },
            }),
          ];
        let document: DocumentNode;
        try {
          const { query } = trusted.resolve(payload, ctx.extra.actor ?? anonymous);
          document = parseQuery(query);
        } catch (error) {
          if (error instanceof AppError) return [new GraphQLError(error.message, { originalError: error })];
          return [new GraphQLError((error as Error).message, { extensions: { code: "GRAPHQL_PARSE_FAILED" } })];
        }
        const refused = notServed(getOperationAST(document, payload.operationName)?.operation, served);
        if (refused) return [refused];
        const invalid = validateDocument(document);
        if (invalid.length > 0) return invalid;
        const variableValues = payload.variables ?? {};
        const error = complexityError(document, payload.operationName, variableValues, maxQueryComplexity);
        if (error) return [error];
        return { schema, document, operationName: payload.operationName, variableValues };
      },
      context: (ctx, id): GraphQLContext => {
        const context: GraphQLContext = { actor: ctx.extra.actor ?? anonymous, correlationId: randomUUID(), services };
        // Pushes skip graphql-ws's per-subscriber serialization: the payload's text is made once
        // per change and operation, and only this subscription's id is written around it.
        const { socket } = ctx.extra;
        const head = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
        pushDirectly(context, {
          serialize: serializePayload,
          send: (payloadJson) =>
            new Promise((resolve, reject) => {
              if (socket.readyState !== socket.OPEN) return resolve(); // as graphql-ws's own send
              socket.send(head + payloadJson + "}", (error) => (error ? reject(error) : resolve()));
            }),
        });
        return context;
      },
      onError: (_ctx, _id, _payload, errors) =>
        errors.map((e) => formatError(e.toJSON(), e)) as unknown as readonly GraphQLError[],
      // Errors inside results (a subscribe() that refuses, a resolver that throws) get their codes too.
      onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? withFormattedErrors(result) : undefined),
    },
    wss,
  );

  return {
    dispose: async () => {
      await cleanup.dispose();
    },
    close: () => {
      server.off("upgrade", upgrade);
      wss.close();
    },
  };
}
