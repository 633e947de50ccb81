import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { ExecutionArgs, ExecutionResult } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { getSchema } from "../../src/graphql/schema";
import { pushDirectly, sharedSubscribe } from "../../src/graphql/sharedSubscribe";
import { anonymous } from "../../src/shared/auth";
import { AppError } from "../../src/shared/errors";
import {
  CreateProductDocument,
  InventoryChangedDocument,
  ProductDocument,
  RestockProductDocument,
  type ProductFieldsFragment,
} from "../../src/storefront/generated/graphql";
import { setupFile } from "../support/app";
import { collect, type GraphQLClient } from "../support/client";
import { eventually } from "../support/wait";

/** Generous deadlines: other test files share the two cores. */
const SLOW = { timeoutMs: 15_000 };

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile();
});
afterAll(async () => t?.teardown());

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await eventually(() => t.app.services.feed.subscriberCount === 0, {
    ...SLOW,
    what: "every subscription to be closed",
  });
});

const registered = (n: number) =>
  eventually(() => t.app.services.feed.subscriberCount === n, { ...SLOW, what: `${n} registered subscription(s)` });

async function createProduct(stock: number): Promise<ProductFieldsFragment> {
  const sku = `SHARED-${randomUUID().slice(0, 8)}`;
  const data = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Shared lamp ${sku}`, priceCents: 700, initialStock: stock },
  });
  return (
    data.createProduct.product ??
    (await eventually(async () => (await t.anonymous.ok(ProductDocument, { sku })).product, SLOW))
  );
}

const restock = (productId: string, quantity: number) =>
  t.admin.ok(RestockProductDocument, { input: { productId, quantity } });

/** A graphql-ws connection as `client`, closed after the test. */
function connect(client: GraphQLClient) {
  const ws = client.ws();
  cleanups.push(async () => ws.dispose());
  return {
    subscribe<T, V>(document: TypedDocumentNode<T, V>, variables: V) {
      const sub = collect(ws, document, variables);
      cleanups.push(async () => sub.unsubscribe());
      return sub;
    },
  };
}

describe("several clients watching the same product with the same subscription", () => {
  it("pushes every change to each of them, and keeps pushing to the others after one unsubscribes", async () => {
    const product = await createProduct(5);
    const variables = { productIds: [product.id] };
    // Different callers (anonymous, a customer, an admin), the same document and variables.
    const leaverConnection = connect(t.anonymous);
    const leaver = leaverConnection.subscribe(InventoryChangedDocument, variables);
    const customer = connect(t.customer("shared-watcher")).subscribe(InventoryChangedDocument, variables);
    const admin = connect(t.admin).subscribe(InventoryChangedDocument, variables);
    await registered(3);

    await restock(product.id, 3);
    const available = (sub: typeof leaver, n: number) =>
      sub.results.some((r) => r.data?.inventoryChanged.available === n);
    await eventually(() => [leaver, customer, admin].every((sub) => available(sub, 8)), {
      ...SLOW,
      what: "the restock pushed to all three",
    });
    for (const sub of [leaver, customer, admin]) {
      expect(sub.results).toEqual([
        {
          data: {
            inventoryChanged: {
              ...product,
              available: 8,
              stockLevel: "IN_STOCK",
              updatedAt: expect.any(String),
              position: expect.any(String),
            },
          },
        },
      ]);
      expect(sub.errors).toEqual([]);
    }

    // One leaves; its connection stays open with a watch on every product, which receives a
    // change after any push for the left subscription would have been sent on that connection.
    leaver.unsubscribe();
    await registered(2);
    const barrier = leaverConnection.subscribe(InventoryChangedDocument, {});
    await registered(3);

    await restock(product.id, 2);
    await eventually(() => available(customer, 10) && available(admin, 10) && available(barrier, 10), {
      ...SLOW,
      what: "the second restock pushed",
    });
    expect(customer.results.map((r) => r.data?.inventoryChanged.available)).toEqual([8, 10]);
    expect(admin.results.map((r) => r.data?.inventoryChanged.available)).toEqual([8, 10]);
    expect(leaver.results.map((r) => r.data?.inventoryChanged.available)).toEqual([8]);
    expect(leaver.completed).toBe(true);
  });
});

describe("sharedSubscribe, called as graphql-ws calls it", () => {
  async function subscription(
    variables: Record<string, unknown>,
    actor = anonymous,
  ): Promise<AsyncIterableIterator<ExecutionResult>> {
    const args: ExecutionArgs = {
      schema: await getSchema(),
      document: InventoryChangedDocument,
      variableValues: variables,
      contextValue: { actor, correlationId: randomUUID(), services: t.app.services },
    };
    const result = await sharedSubscribe(args);
    if (!(Symbol.asyncIterator in result)) throw new Error(`not a subscription: ${JSON.stringify(result)}`);
    cleanups.push(async () => void (await result.return?.()));
    return result;
  }

  it("gives subscribers of the same operation one shared result per change, and other variables their own", async () => {
    const product = await createProduct(1);
    const first = await subscription({ productIds: [product.id] });
    const second = await subscription({ productIds: [product.id] }, { kind: "user", id: "someone", role: "customer" });
    const everything = await subscription({});
    await registered(3);

    await restock(product.id, 4);
    const [a, b, c] = await Promise.all([first.next(), second.next(), everything.next()]);
    expect(a.value).toEqual({ data: { inventoryChanged: expect.objectContaining({ id: product.id, available: 5 }) } });
    expect(b.value).toBe(a.value);
    expect(c.value).toEqual(a.value);
    expect(c.value).not.toBe(a.value);
  });

  it("serializes a change once per operation for subscribers written to directly, and writes it to each", async () => {
    const product = await createProduct(1);
    const serialized: ExecutionResult[] = [];
    const sent: string[][] = [[], [], []];
    const subscribers = await Promise.all(
      [{ productIds: [product.id] }, { productIds: [product.id] }, {}].map(async (variables, i) => {
        const contextValue = { actor: anonymous, correlationId: randomUUID(), services: t.app.services };
        pushDirectly(contextValue, {
          serialize: (result) => (serialized.push(result), JSON.stringify(result)),
          send: async (json) => void sent[i]!.push(json),
        });
        const result = await sharedSubscribe({
          schema: await getSchema(),
          document: InventoryChangedDocument,
          variableValues: variables,
          contextValue,
        });
        if (!(Symbol.asyncIterator in result)) throw new Error(`not a subscription: ${JSON.stringify(result)}`);
        cleanups.push(async () => void (await result.return?.()));
        return result;
      }),
    );
    // graphql-ws waits on next(): written directly, it yields nothing until the subscription ends.
    const ended = subscribers.map((sub) => sub.next());
    await registered(3);

    await restock(product.id, 4);
    await eventually(() => sent.every((texts) => texts.length === 1), { ...SLOW, what: "a push written to each" });
    expect(serialized).toHaveLength(2); // two operations: the product's, and every product's
    expect(JSON.parse(sent[0]![0]!)).toEqual({
      data: { inventoryChanged: expect.objectContaining({ id: product.id, available: 5 }) },
    });
    expect(sent[1]![0]).toBe(sent[0]![0]);
    expect(JSON.parse(sent[2]![0]!)).toEqual(JSON.parse(sent[0]![0]!));

    for (const sub of subscribers) await sub.return!();
    for (const next of ended) expect(await next).toEqual({ value: undefined, done: true });
  });

  it("ends a subscription waiting for its next change and takes it off the feed when it is returned", async () => {
    const product = await createProduct(1);
    const sub = await subscription({ productIds: [product.id] });
    await registered(1);
    const pending = sub.next();
    await sub.return!();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(t.app.services.feed.subscriberCount).toBe(0);
  });

  it("answers a subscription the source refuses with its errors instead of a stream", async () => {
    const result = await sharedSubscribe({
      schema: await getSchema(),
      document: InventoryChangedDocument,
      variableValues: { productIds: ["lamp"] },
      contextValue: { actor: anonymous, correlationId: randomUUID(), services: t.app.services },
    });
    expect(Symbol.asyncIterator in result).toBe(false);
    const original = (result as ExecutionResult).errors?.[0]?.originalError;
    expect(original).toBeInstanceOf(AppError);
    expect((original as AppError).code).toBe("BAD_USER_INPUT");
  });
});
