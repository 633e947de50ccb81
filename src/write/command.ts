import type { Sql } from "../db/database";
import type { Actor, Role } from "../shared/auth";
import type { IdGenerator } from "../shared/clock";
import type { NewEvent } from "../shared/events";

export interface CommandContext {
  actor: Extract<Actor, { kind: "user" }>;
  now: Date;
  newId: IdGenerator;
}

/** What a handler hands back to the bus: the events to append, the command's result, and its save. */
export interface Decided<Result> {
  events: NewEvent[];
  result: Result;
  /**
   * The save's statements, issued and not awaited (with any check of their answers chained on):
   * the bus sends the event append right behind them, in the same round trip, and awaits both
   * before COMMIT. A failed statement or check rolls the whole command back. Throw only before
   * issuing the save: a statement issued and then dropped would fail unheard.
   */
  saved: Promise<unknown>;
}

/**
 * One command: who may send it, and a handler that loads state, calls the command's pure
 * decide(), and issues the save. The bus appends the events in the same transaction.
 */
export interface CommandDefinition<Input, Result> {
  readonly name: string;
  readonly roles: readonly Role[];
  /**
   * Runs inside the bus's transaction: use only `sql` (the write tables, in schema "write").
   * Issue the load first, before any await: it leaves in one round trip with the key's claim.
   */
  handle(sql: Sql, input: Input, ctx: CommandContext): Promise<Decided<Result>>;
  /** The client's idempotency key, for commands that take one (the bus makes them idempotent). */
  idempotencyKey?(input: Input): string | null | undefined;
  /** What a key stands for; the same key with a different request is a CONFLICT. Default: the input. */
  fingerprint?(input: Input): unknown;
  /** A replayed request's result, from the stream its first request appended to last. */
  resultOf(streamId: string): Result;
}

export function defineCommand<Input, Result>(def: CommandDefinition<Input, Result>): CommandDefinition<Input, Result> {
  return def;
}
