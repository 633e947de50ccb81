/**
 * The projections' names and the read tables their read_changed messages name: written by the
 * projections, read by the query side (read-your-writes, the change feed, the catalog's cache).
 */
export const CATALOG_PROJECTION = "catalog";
export const PRODUCTS_TABLE = "products";
export const ORDERS_PROJECTION = "orders";
export const ORDERS_TABLE = "orders";
