import type { Role } from "./auth";

/** A domain event as a command decides it: what happened, without its place in the log. */
export interface EventData<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
}

/** Stored with every event: who caused it and which request it belongs to. */
export interface EventMetadata {
  correlationId: string;
  causationId: string | null;
  actor: { id: string | null; role: Role | "system" | "anonymous" };
  command: string;
  /** The client's idempotency key, when the request carried one. */
  idempotencyKey?: string;
}

/** The stream an event belongs to, and its version in it (optimistic concurrency: unique per stream). */
export interface StreamPlace {
  streamId: string;
  streamType: string;
  /** The stream's version after this event. */
  streamVersion: number;
}

/** An event with its envelope, ready to append (the command bus builds it). */
export type NewEvent<E extends EventData = EventData> = E & StreamPlace;

/** An event as read back from the log. A union of events stays a union (switch on `type` narrows `data`). */
export type RecordedEvent<E extends EventData = EventData> = E extends EventData
  ? E & StreamPlace & { position: bigint; txId: bigint; metadata: EventMetadata; occurredAt: Date }
  : never;

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

export const positionOf = (e: LogPosition): LogPosition => ({ txId: e.txId, position: e.position });

export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
