import {
  createSourceEventStream,
  execute,
  print,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
} from "graphql";

type Execution = ExecutionResult | Promise<ExecutionResult>;

/** One operation's result for one source event, and its text once a direct push has serialized it. */
interface Shared {
  result: Execution;
  json?: string | Promise<string>;
}

/**
 * Results by source event (the row object the ChangeFeed loaded once and pushed to every
 * subscriber) and by operation. An entry lives as long as the row is referenced (a subscriber
 * queue, an execution in flight), then goes with it.
 */
const executions = new WeakMap<object, Map<string, Shared>>();

/**
 * A subscriber's connection, for results written to it directly: `serialize` turns a result into
 * the text of a `next` message's payload (once per event and operation, shared by its
 * subscribers), `send` writes that payload as this subscription's next message and resolves once
 * the connection has taken it.
 */
export interface DirectPush {
  serialize(result: ExecutionResult): string;
  send(payloadJson: string): Promise<void>;
}

/** By execution context (graphql-ws makes one per subscription). */
const directPushes = new WeakMap<object, DirectPush>();

/**
 * Results of the subscription executed with this context are written through `push` instead of
 * being handed, one object per subscriber, to graphql-ws to serialize and send.
 */
export function pushDirectly(contextValue: object, push: DirectPush): void {
  directPushes.set(contextValue, push);
}

const schemaIds = new WeakMap<GraphQLSchema, number>();
let nextSchemaId = 0;

function schemaId(schema: GraphQLSchema): number {
  let id = schemaIds.get(schema);
  if (id === undefined) schemaIds.set(schema, (id = nextSchemaId++));
  return id;
}

/** Documents printed, by object: subscribers of one operation share its document (parseQuery). */
const printed = new WeakMap<DocumentNode, string>();
function printedOnce(document: DocumentNode): string {
  let text = printed.get(document);
  if (text === undefined) printed.set(document, (text = print(document)));
  return text;
}

/** What, besides the payload, an execution's result depends on (the context excepted: see below). */
function operationKey(args: ExecutionArgs): string {
  return JSON.stringify([
    schemaId(args.schema),
    printedOnce(args.document),
    args.operationName ?? null,
    args.variableValues ?? null,
  ]);
}

function isAsyncIterable<T>(value: unknown): value is AsyncIterable<T> {
  return typeof Object(value)[Symbol.asyncIterator] === "function";
}

/**
 * graphql's subscribe() for graphql-ws (`useServer({ subscribe })`), except that subscribers of
 * the same operation (same document, operationName and variables) share one execution per
 * event: with 1,000 subscribers to inventoryChanged, a change is executed once, not 1,000 times,
 * and every subscriber gets the same result object (graphql-ws only serialises it).
 *
 * ASSUMPTION: what a subscription's fields resolve to does not depend on the subscriber's
 * context. True for this schema: per-subscriber authorization happens where the event stream is
 * made, in each subscription's `subscribe` (e.g. orderUpdated's requireUser/canSee check and its
 * per-subscriber `accept` filter on the Topic), which still runs once per subscriber; the
 * Product and Order fields only read their row. A field that reads the context (the actor, a
 * per-request loader) would leak one subscriber's answer to the others: such a subscription must
 * not go through this function, or its key must include what it reads.
 *
 * Only object payloads are shared (they key a WeakMap); anything else is executed per subscriber.
 *
 * With a DirectPush registered for the execution's context (see pushDirectly), the shared result
 * is also serialized once per event and operation, and each subscriber's next message is that
 * text behind its own id, written to its connection without a trip through graphql-ws; graphql-ws
 * still starts, refuses and completes the subscription. The iterator then yields nothing and
 * ends when the source does (unsubscribed, connection closed).
 */
export async function sharedSubscribe(
  args: ExecutionArgs,
): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const resultOrStream = await createSourceEventStream(args);
  if (!isAsyncIterable<unknown>(resultOrStream)) return resultOrStream;

  const key = operationKey(args); // once per subscription, not per event
  const source = resultOrStream[Symbol.asyncIterator]();
  const push =
    typeof args.contextValue === "object" && args.contextValue ? directPushes.get(args.contextValue) : undefined;

  const sharedFor = (payload: unknown): Shared => {
    if (typeof payload !== "object" || payload === null) return { result: execute({ ...args, rootValue: payload }) };
    let byOperation = executions.get(payload);
    if (!byOperation) executions.set(payload, (byOperation = new Map()));
    let shared = byOperation.get(key);
    if (!shared) byOperation.set(key, (shared = { result: execute({ ...args, rootValue: payload }) }));
    return shared;
  };

  const jsonOf = (shared: Shared, direct: DirectPush): string | Promise<string> => {
    if (shared.json === undefined) {
      const { result } = shared;
      shared.json = result instanceof Promise ? result.then((r) => direct.serialize(r)) : direct.serialize(result);
    }
    return shared.json;
  };

  const closeSourceIgnoringErrors = async () => {
    try {
      await source.return?.();
    } catch {
      // keep the original error
    }
  };

  const map = async (step: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult>> => {
    if (step.done) return { value: undefined, done: true };
    try {
      return { value: await sharedFor(step.value).result, done: false };
    } catch (error) {
      await closeSourceIgnoringErrors();
      throw error;
    }
  };

  // A plain iterator, not an async generator: graphql-ws calls return() on unsubscribe while a
  // next() is still waiting for an event, and a generator would queue that return() behind it
  // (the subscriber would stay on the Topic until the next change). This one passes it straight
  // to the source, which ends the pending next() and leaves the Topic.
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      if (!push) return map(await source.next());
      for (;;) {
        const step = await source.next();
        if (step.done) return { value: undefined, done: true };
        try {
          const json = jsonOf(sharedFor(step.value), push);
          await push.send(typeof json === "string" ? json : await json);
        } catch (error) {
          await closeSourceIgnoringErrors();
          throw error;
        }
      }
    },
    async return() {
      if (typeof source.return === "function") await source.return();
      return { value: undefined, done: true };
    },
    async throw(error: unknown) {
      if (typeof source.throw === "function") return map(await source.throw(error));
      await closeSourceIgnoringErrors();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
