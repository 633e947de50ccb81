import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateProductDocument, ProductDocument, ProductsDocument } from "../../src/storefront/generated/graphql";
import { setupFile } from "../support/app";
import { eventually } from "../support/wait";

// products(): the count comes with the page when totalCount is selected, however it is selected;
// pages without it, and edge cases of the page and the cursor, through HTTP.

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile({ trustedDocuments: "off" }); // documents of its own: aliases, fragments
  // Five "Pager" products, the fourth out of stock; and one that must never match.
  for (const [i, stock] of [
    [1, 5],
    [2, 5],
    [3, 5],
    [4, 0],
    [5, 5],
  ] as const) {
    const sku = `PAGER-${i}`;
    const res = await t.admin.ok(CreateProductDocument, {
      input: { sku, name: `Pager ${i}`, priceCents: 100 * i, initialStock: stock },
    });
    // A setup step: on a loaded machine the bounded read-your-writes wait may run out.
    if (!res.createProduct.product)
      await eventually(async () => (await t.anonymous.ok(ProductDocument, { sku })).product, { timeoutMs: 15_000 });
  }
  await t.admin.ok(CreateProductDocument, {
    input: { sku: "OTHER-1", name: "Unrelated", priceCents: 100, initialStock: 1 },
  });
  await eventually(async () => (await t.anonymous.ok(ProductDocument, { sku: "OTHER-1" })).product, {
    timeoutMs: 15_000,
  });
});
afterAll(async () => t?.teardown());

async function query<T>(text: string, variables: Record<string, unknown> = {}) {
  const res = await t.anonymous.raw(JSON.stringify({ query: text, variables }));
  return res as { status: number; data: T; errors?: { extensions?: { code?: string } }[] };
}

describe("counting the products of a search", () => {
  it("answers totalCount asked for directly, under an alias, or through fragments", async () => {
    const direct = await query<{ products: { totalCount: number } }>(
      `{ products(filter: { search: "pager" }) { totalCount } }`,
    );
    expect(direct.data.products.totalCount).toBe(5);
    const aliased = await query<{ p: { n: number; edges: unknown[] } }>(
      `{ p: products(filter: { search: "pager", inStock: true }, first: 2) { n: totalCount edges { node { id } } } }`,
    );
    expect(aliased.data.p).toMatchObject({ n: 4 });
    expect(aliased.data.p.edges).toHaveLength(2);
    const fragments = await query<{ products: { totalCount: number; edges: unknown[] } }>(
      `query { products(filter: { search: "PAGER" }, first: 1) { ...Counted } }
       fragment Counted on ProductConnection { ... on ProductConnection { ...Total } edges { cursor } }
       fragment Total on ProductConnection { totalCount }`,
    );
    expect(fragments.errors).toBeUndefined();
    expect(fragments.data.products).toMatchObject({ totalCount: 5 });
    expect(fragments.data.products.edges).toHaveLength(1);
  });

  it("counts with first: 0 and on an empty page after the last product", async () => {
    const zero = await t.anonymous.ok(ProductsDocument, { filter: { search: "pager" }, first: 0 });
    expect(zero.products).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null }, totalCount: 5 });
    const all = await t.anonymous.ok(ProductsDocument, { filter: { search: "pager" }, first: 5 });
    expect(all.products.pageInfo.hasNextPage).toBe(false);
    const past = await t.anonymous.ok(ProductsDocument, {
      filter: { search: "pager" },
      first: 5,
      after: all.products.pageInfo.endCursor,
    });
    expect(past.products).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null }, totalCount: 5 });
  });
});

describe("paging without totalCount", () => {
  it("walks the in-stock products in name order, page by page", async () => {
    const names: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: {
        data: {
          products: {
            edges: { node: { name: string } }[];
            pageInfo: { hasNextPage: boolean; endCursor: string | null };
          };
        };
      } = await query(
        `query ($after: String) { products(filter: { search: "pager", inStock: true }, first: 2, after: $after) { edges { node { name } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      names.push(...res.data.products.edges.map((e) => e.node.name));
      if (!res.data.products.pageInfo.hasNextPage) break;
      after = res.data.products.pageInfo.endCursor;
    }
    expect(names).toEqual(["Pager 1", "Pager 2", "Pager 3", "Pager 5"]);
  });

  it("lists without a filter too", async () => {
    const res = await query<{ products: { edges: { node: { sku: string } }[] } }>(
      `{ products(first: 100) { edges { node { sku } } } }`,
    );
    expect(res.data.products.edges.map((e) => e.node.sku).sort()).toEqual([
      "OTHER-1",
      "PAGER-1",
      "PAGER-2",
      "PAGER-3",
      "PAGER-4",
      "PAGER-5",
    ]);
  });
});

describe("cursors", () => {
  it("resume after any edge of a page, and the last edge's is pageInfo's endCursor", async () => {
    type Paged = {
      products: { edges: { cursor: string; node: { sku: string } }[]; pageInfo: { endCursor: string | null } };
    };
    const page = (after?: string) =>
      query<Paged>(
        `query($after: String) { products(filter: { search: "pager" }, first: 3, after: $after) {
           edges { cursor node { sku } } pageInfo { endCursor } } }`,
        { after },
      );
    const first = (await page()).data.products;
    expect(first.edges.map((e) => e.node.sku)).toEqual(["PAGER-1", "PAGER-2", "PAGER-3"]);
    expect(first.pageInfo.endCursor).toBe(first.edges[2]!.cursor);
    const afterSecond = (await page(first.edges[1]!.cursor)).data.products;
    expect(afterSecond.edges.map((e) => e.node.sku)).toEqual(["PAGER-3", "PAGER-4", "PAGER-5"]);
  });
});

describe("a cursor that this API did not make", () => {
  it("is rejected as BAD_USER_INPUT when its id is not a UUID", async () => {
    const after = Buffer.from(JSON.stringify(["Pager 1", "1; DROP TABLE x"])).toString("base64url");
    const res = await t.anonymous.request(ProductsDocument, { first: 2, after });
    expect(res.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});

describe("GraphQL answers over HTTP", () => {
  it("tell caches not to store them", async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ products(first: 1) { totalCount } }" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const bad = await fetch(`${t.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ nope }" }),
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("cache-control")).toBe("no-store");
  });
});
