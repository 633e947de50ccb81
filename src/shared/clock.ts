import { randomUUID } from "node:crypto";

/** Time and ids come into command handlers from outside, so decide() stays pure and testable. */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

export type IdGenerator = () => string;

/**
 * A time-ordered UUID (version 7, RFC 9562): the first 48 bits are the Unix time in
 * milliseconds, the other 74 (besides version and variant) random, from randomUUID's pool. The
 * ids a command makes (orders, products) are the keys of B-tree indexes on both sides (the
 * orders, their lines, the read rows): ids made in time order are inserted beside each other,
 * at the end, not on a page anywhere in an index that has outgrown memory. Like every UUID they
 * are opaque to clients, but anyone can read the millisecond in them: an order's is its placedAt,
 * which the order shows anyway; a product's tells when it was created, which the API did not
 * otherwise say. Neither is a secret a shop keeps.
 */
export const uuid: IdGenerator = () => {
  const ms = Date.now().toString(16).padStart(12, "0");
  // randomUUID(): xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx, V already the RFC variant (8–b).
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${randomUUID().slice(15)}`;
};
