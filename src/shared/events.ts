import type { Role } from "./auth";

/** Stored with every event: who caused it and which request it belongs to. */
export interface EventMetadata {
  correlationId: string;
  causationId: string | null;
  actor: { id: string | null; role: Role | "anonymous" };
  command: string;
  /** The client's idempotency key, when the request carried one. */
  idempotencyKey?: string;
}

/** An event a command decided on, before it has a place in the log. */
export interface NewEvent<Type extends string = string, Data = unknown> {
  streamId: string;
  streamType: string;
  /** The stream's version after this event (optimistic concurrency: unique per stream). */
  streamVersion: number;
  type: Type;
  data: Data;
}

/** An event as read back from the log. */
export interface RecordedEvent<Type extends string = string, Data = unknown> extends NewEvent<Type, Data> {
  position: bigint;
  txId: bigint;
  metadata: EventMetadata;
  occurredAt: Date;
}

/** Where a reader is in the log: events are read in (txId, position) order. */
export interface LogPosition {
  txId: bigint;
  position: bigint;
}

export const LOG_START: LogPosition = { txId: 0n, position: 0n };

export function comparePositions(a: LogPosition, b: LogPosition): number {
  if (a.txId !== b.txId) return a.txId < b.txId ? -1 : 1;
  if (a.position !== b.position) return a.position < b.position ? -1 : 1;
  return 0;
}

export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
