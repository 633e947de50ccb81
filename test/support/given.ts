import { expect } from "vitest";
import { AppError, type ErrorCode } from "../../src/shared/errors";
import type { EventData } from "../../src/shared/events";
import { inStream, type CommandContext, type CommandDefinition } from "../../src/write/command";

const NO_CONTEXT: CommandContext = {
  actor: { kind: "user", id: "alice", role: "customer" },
  now: new Date(0),
  newId: () => {
    throw new Error("decide takes no ids: the command's state does");
  },
  settings: { orderPaymentTimeoutSeconds: 900 },
};

/** A command's decide, with the envelope the command bus adds (stream, type, version): what it appends. */
export function decided<Input, State, Event extends EventData>(
  command: Pick<CommandDefinition<Input, State, Event, unknown>, "stream" | "decide">,
  state: State,
  input: Input,
  now = NO_CONTEXT.now,
  actor = NO_CONTEXT.actor,
) {
  const events = command.decide(state, input, { ...NO_CONTEXT, now, actor });
  return inStream(command.stream(state), events);
}

/**
 * Emmett-style specification of a pure decide(): given(state).when(command).then(events), or
 * .thenRejects(code) for a domain error. Time and ids are fixed by the caller's adapter, so
 * nothing here touches a clock, a database or a mock.
 */
export function decideSpec<State, Command, Event>(decide: (state: State, command: Command) => Event[]) {
  return function given(state: State) {
    return {
      when(command: Command) {
        const run = (): { events: Event[] } | { error: unknown } => {
          try {
            return { events: decide(state, command) };
          } catch (error) {
            return { error };
          }
        };
        return {
          then(expected: readonly unknown[]): void {
            const outcome = run();
            if ("error" in outcome) throw new Error(`expected events, but decide threw ${String(outcome.error)}`);
            expect(outcome.events).toEqual(expected);
          },
          thenRejects(code: ErrorCode, details?: Record<string, unknown>): void {
            const outcome = run();
            if (!("error" in outcome))
              throw new Error(`expected ${code}, but decide returned ${JSON.stringify(outcome.events)}`);
            expect(outcome.error).toBeInstanceOf(AppError);
            expect((outcome.error as AppError).code).toBe(code);
            if (details) expect((outcome.error as AppError).details).toMatchObject(details);
          },
        };
      },
    };
  };
}
