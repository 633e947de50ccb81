import type { Tx } from "../db/database";
import type { Actor, Role } from "../shared/auth";
import type { IdGenerator } from "../shared/clock";
import type { LogPosition, NewEvent } from "../shared/events";

export interface CommandContext {
  actor: Extract<Actor, { kind: "user" }>;
  now: Date;
  newId: IdGenerator;
}

/** What a handler hands back to the bus: new events to append, or the outcome of an earlier identical request. */
export type HandlerOutcome<Result> =
  | { kind: "decided"; events: NewEvent[]; result: Result }
  | { kind: "replayed"; result: Result; position: LogPosition };

/**
 * One command: who may send it, and a handler that loads state, calls the command's pure
 * decide(), and saves state. The bus appends the events in the same transaction.
 */
export interface CommandDefinition<Input, Result> {
  readonly name: string;
  readonly roles: readonly Role[];
  handle(tx: Tx, input: Input, ctx: CommandContext): Promise<HandlerOutcome<Result>>;
}

export function defineCommand<Input, Result>(def: CommandDefinition<Input, Result>): CommandDefinition<Input, Result> {
  return def;
}
