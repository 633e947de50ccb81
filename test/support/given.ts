import { expect } from "vitest";
import { AppError, type ErrorCode } from "../../src/shared/errors";

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
