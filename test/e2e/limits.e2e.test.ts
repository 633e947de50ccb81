import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { setupFile } from "../support/app";
import { token } from "../support/client";
import { eventually } from "../support/wait";
import { CreateProductDocument } from "../../src/storefront/generated/graphql";

// The limits that keep one client from hurting the others (README, "Configuration").

let t: Awaited<ReturnType<typeof setupFile>>;
let productId: string;
beforeAll(async () => {
  t = await setupFile({ mutationsPerSecond: 2, mutationBurst: 3 });
  const { createProduct } = await t.anonymous.as(token("admin", "setup")).ok(CreateProductDocument, {
    input: { sku: `LIM-${randomUUID().slice(0, 8)}`, name: "Limited", priceCents: 100, initialStock: 1 },
  });
  productId = createProduct.product!.id;
});
afterAll(async () => t?.teardown());

const restockBody = JSON.stringify({
  query: `mutation($id: ID!) { restockProduct(input: { productId: $id, quantity: 1 }) { position } }`,
});

async function restock(sub: string) {
  const res = await fetch(`${t.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token("admin", sub)}` },
    body: JSON.stringify({ ...JSON.parse(restockBody), variables: { id: productId } }),
  });
  const body = (await res.json()) as { errors?: { extensions?: { code?: string; retryAfterSeconds?: number } }[] };
  return { status: res.status, retryAfter: res.headers.get("retry-after"), error: body.errors?.[0]?.extensions };
}

const eventCount = async () => (await t.db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM "write".events`))[0]!.n;

describe("mutations per actor (MUTATIONS_PER_SECOND=2, MUTATION_BURST=3)", () => {
  it("refuses the flooding actor with RATE_LIMITED, 429 and Retry-After, writes nothing, leaves the others alone, and lets it go on later", async () => {
    const flood = await Promise.all(Array.from({ length: 5 }, () => restock("flooder")));
    const accepted = flood.filter((r) => r.status === 200 && !r.error);
    const limited = flood.filter((r) => r.error?.code === "RATE_LIMITED");
    expect(accepted).toHaveLength(3);
    expect(limited).toHaveLength(2);
    for (const r of limited) {
      expect(r.status).toBe(429);
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(r.error?.retryAfterSeconds).toBe(Number(r.retryAfter));
    }
    const events = await eventCount();
    expect((await restock("flooder")).error?.code).toBe("RATE_LIMITED");
    expect(await eventCount()).toBe(events); // refused before the command: nothing written

    // Another actor on the same instance is not slowed by it.
    expect(await restock("bystander")).toMatchObject({ status: 200, error: undefined });

    // Over graphql-ws too, with the same code and wait.
    const ws = t.anonymous.as(token("admin", "flooder")).ws();
    const overWs = await new Promise<Record<string, unknown> | undefined>((resolve, reject) =>
      ws.subscribe(
        { ...JSON.parse(restockBody), variables: { id: productId } },
        { next: (r) => resolve(r.errors?.[0]?.extensions), error: reject, complete: () => resolve(undefined) },
      ),
    );
    expect(overWs).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: expect.any(Number) });
    await ws.dispose();

    // After the wait it says, the actor goes on.
    await eventually(async () => (await restock("flooder")).status === 200, {
      timeoutMs: 5000,
      intervalMs: 250,
      what: "the flooding actor's bucket to refill",
    });
  });
});
