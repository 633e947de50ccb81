import type { Statement } from "../db/sql";
import type { Actor, Role } from "../shared/auth";
import type { IdGenerator } from "../shared/clock";
import type { EventData, NewEvent } from "../shared/events";

export interface CommandContext {
  actor: Extract<Actor, { kind: "user" | "system" }>;
  now: Date;
  newId: IdGenerator;
  settings: CommandSettings;
}

/** The service's own rules that commands apply (from its configuration). */
export interface CommandSettings {
  /** ORDER_PAYMENT_TIMEOUT_SECONDS: how long a placed order waits for its payment. */
  orderPaymentTimeoutSeconds: number;
}

/** The stream a command appends to, as it was loaded (version 0: a new stream). */
export interface StreamRef {
  type: string;
  id: string;
  version: number;
}

/**
 * One command, described; the command bus runs it. In ONE transaction the bus sends the key's
 * claim and `load` together, builds the state from the rows, calls the pure `decide`, and sends
 * `save`'s statements, the events and COMMIT together. A command never sends a statement itself.
 *
 *   load(input) ──rows──► state(rows) ──► decide(state, input) ──events──► save(state, events)
 *
 * Invariants the database keeps are left to it: a check constraint keeps stock from going below
 * zero, and the event log's unique (stream, version) refuses a second change of a stream from
 * the same version (the bus then retries the command on fresh state).
 */
export interface CommandDefinition<Input, State, Event extends EventData, Result, Row = Record<string, unknown>> {
  readonly name: string;
  /** Who may dispatch it; "system" is the service itself (see SystemActor). */
  readonly roles: readonly (Role | "system")[];
  /** The client's idempotency key, for commands that take one (the bus makes them idempotent). */
  idempotencyKey?(input: Input): string | null | undefined;
  /** What a key stands for; the same key with a different request is a CONFLICT. Default: the input. */
  fingerprint?(input: Input): unknown;
  /** The statement that loads what decide needs, taking the row locks the command needs. */
  load(input: Input, ctx: CommandContext): Statement<Row>;
  /** The state decide works on, from the loaded rows. A new stream's id is taken here (ctx.newId). */
  state(rows: Row[], input: Input, ctx: CommandContext): State;
  /** Pure: the events of the command, or a domain error (AppError). */
  decide(state: State, input: Input, ctx: CommandContext): Event[];
  /** The stream the events go to, and its version when loaded. */
  stream(state: State): StreamRef;
  /** How the write model changes: statements derived from the state and the events. */
  save(state: State, events: NewEvent<Event>[], ctx: CommandContext): Statement<unknown>[];
  /** The command's answer (JSON): stored with its idempotency key, so a replay answers the same. */
  result(state: State): Result;
}

/** A command by what it takes and answers (its state, events and rows are its own business). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Command<Input, Result> = CommandDefinition<Input, any, any, Result, any>;

export function defineCommand<Input, State, Event extends EventData, Result, Row = Record<string, unknown>>(
  def: CommandDefinition<Input, State, Event, Result, Row>,
): CommandDefinition<Input, State, Event, Result, Row> {
  return def;
}

/** The events as appended: in the command's stream, one version each after the loaded one. */
export function inStream<E extends EventData>(stream: StreamRef, events: E[]): NewEvent<E>[] {
  return events.map((event, i) => ({
    ...event,
    streamId: stream.id,
    streamType: stream.type,
    streamVersion: stream.version + i + 1,
  }));
}
