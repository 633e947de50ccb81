import { describe, it } from "vitest";
import { createProduct, type CreateProduct } from "../../src/write/catalog/commands/createProduct";
import { restockProduct, type RestockProduct } from "../../src/write/catalog/commands/restockProduct";
import { decided } from "../support/given";
import { decideSpec } from "../support/given";

const PRODUCT_ID = "00000000-0000-4000-8000-000000000001";
const mug: CreateProduct = { sku: "MUG-1", name: "Mug", description: "Holds tea", priceCents: 1250, initialStock: 5 };

const create = decideSpec((state: { skuTaken: boolean }, cmd: CreateProduct) =>
  decided(createProduct, { ...state, productId: PRODUCT_ID }, cmd),
);
const restock = decideSpec((state: Parameters<typeof restockProduct.decide>[0], cmd: RestockProduct) =>
  decided(restockProduct, state, cmd),
);
const free = { skuTaken: false };
const created = (data: Partial<CreateProduct>) => [
  {
    streamId: PRODUCT_ID,
    streamType: "product",
    streamVersion: 1,
    type: "ProductCreated",
    data: {
      productId: PRODUCT_ID,
      sku: "MUG-1",
      name: "Mug",
      description: "Holds tea",
      priceCents: 1250,
      initialStock: 5,
      ...data,
    },
  },
];

describe("creating a product (decide)", () => {
  it("creates the product as version 1 of its stream, with the id it is given", () => {
    create(free).when(mug).then(created({}));
  });

  it("trims sku, name and description, and stores a blank description as null", () => {
    create(free)
      .when({ ...mug, sku: "  MUG-1 ", name: " Mug ", description: "   " })
      .then(created({ description: null }));
  });

  it("allows a free product with no stock", () => {
    create(free)
      .when({ ...mug, priceCents: 0, initialStock: 0 })
      .then(created({ priceCents: 0, initialStock: 0 }));
  });

  it("rejects a sku that is taken as CONFLICT", () => {
    create({ skuTaken: true }).when(mug).thenRejects("CONFLICT", { sku: "MUG-1" });
  });

  it.each([
    ["a blank sku", { sku: "  " }, "sku"],
    ["a blank name", { name: "" }, "name"],
    ["a negative price", { priceCents: -1 }, "priceCents"],
    ["a fractional price", { priceCents: 9.99 }, "priceCents"],
    ["negative initial stock", { initialStock: -5 }, "initialStock"],
  ])("rejects %s as BAD_USER_INPUT", (_what, change, field) => {
    create(free)
      .when({ ...mug, ...change })
      .thenRejects("BAD_USER_INPUT", { field });
  });

  it("reports bad input before a taken sku (nothing to conflict with)", () => {
    create({ skuTaken: true })
      .when({ ...mug, priceCents: -1 })
      .thenRejects("BAD_USER_INPUT");
  });
});

describe("restocking a product (decide)", () => {
  const product = { id: PRODUCT_ID, version: 4 };

  it("adds the quantity as the product stream's next version", () => {
    restock({ product })
      .when({ productId: PRODUCT_ID, quantity: 7 })
      .then([
        {
          streamId: PRODUCT_ID,
          streamType: "product",
          streamVersion: 5,
          type: "StockAdjusted",
          data: { productId: PRODUCT_ID, delta: 7, reason: "restock" },
        },
      ]);
  });

  it.each([0, -3, 2.5])("rejects quantity %s as BAD_USER_INPUT", (quantity) => {
    restock({ product }).when({ productId: PRODUCT_ID, quantity }).thenRejects("BAD_USER_INPUT", { field: "quantity" });
  });

  it("rejects an unknown product as NOT_FOUND", () => {
    restock({ product: null })
      .when({ productId: PRODUCT_ID, quantity: 1 })
      .thenRejects("NOT_FOUND", { productId: PRODUCT_ID });
  });
});
