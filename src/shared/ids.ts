/** The form of every id of the API (products, orders). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: string): boolean => UUID.test(value);

/** A uuid as the 128-bit number its 32 hex digits write, as "read".row_key(id) computes it in SQL. */
export const uuidNumber = (id: string): bigint => BigInt(`0x${id.replace(/-/g, "")}`);
