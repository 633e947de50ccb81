/** Events of the product stream (stream type "product"). Versioned facts: add new types, never change old ones. */
export type ProductCreated = {
  type: "ProductCreated";
  data: {
    productId: string;
    sku: string;
    name: string;
    description: string | null;
    priceCents: number;
    initialStock: number;
  };
};

export type StockAdjusted = {
  type: "StockAdjusted";
  data: { productId: string; delta: number; reason: "restock" };
};

export type CatalogEvent = ProductCreated | StockAdjusted;

export const PRODUCT_STREAM = "product";
