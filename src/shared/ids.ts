/** The form of every id of the API (products, orders). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: string): boolean => UUID.test(value);

/** A uuid as the 128-bit number its 32 hex digits write, as "read".row_key(id) computes it in SQL. */
export const uuidNumber = (id: string): bigint => BigInt(`0x${id.replace(/-/g, "")}`);

/** The uuid a 128-bit number writes: uuidNumber's inverse. */
export function uuidText(n: bigint): string {
  const hex = n.toString(16).padStart(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
