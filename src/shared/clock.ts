import { randomUUID } from "node:crypto";

/** Time and ids come into command handlers from outside, so decide() stays pure and testable. */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

export type IdGenerator = () => string;
export const uuid: IdGenerator = () => randomUUID();
