import { setTimeout as delay } from "node:timers/promises";
import type { Database } from "../db/database";
import { appendEvents, ConcurrencyError } from "../eventLog/eventLog";
import type { Actor } from "../shared/auth";
import { AppError, isRetryableTransactionError, sqlState } from "../shared/errors";
import type { Clock, IdGenerator } from "../shared/clock";
import type { LogPosition } from "../shared/events";
import type { CommandDefinition } from "./command";
import { checkKey, claimKey } from "./idempotency";

export interface CommandOutcome<Result> {
  result: Result;
  /** Log position of the command's last event (of the first identical request, for a replay). */
  position: LogPosition;
}

export interface DispatchOptions {
  correlationId: string;
  causationId?: string | null;
}

export interface CommandObserver {
  onCommand(name: string, outcome: "ok" | "rejected" | "error", seconds: number, attempts: number): void;
}

const MAX_ATTEMPTS = 6;

/**
 * The one transaction boundary of the write side: authorization by role, then idempotency
 * (the client's key claimed first), handler (load → decide → save) and event append, in ONE
 * transaction. Serialization failures,
 * deadlocks and optimistic-concurrency conflicts are retried a bounded number of times;
 * every other failure rolls the whole transaction back.
 */
export class CommandBus {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly newId: IdGenerator,
    private readonly observer?: CommandObserver,
  ) {}

  async dispatch<Input, Result>(
    command: CommandDefinition<Input, Result>,
    input: Input,
    actor: Actor,
    options: DispatchOptions,
  ): Promise<CommandOutcome<Result>> {
    const started = performance.now();
    let attempts = 0;
    try {
      if (actor.kind !== "user") throw new AppError("UNAUTHENTICATED", "sign in to do this");
      if (!command.roles.includes(actor.role)) throw new AppError("FORBIDDEN", `${command.name} is not allowed for role ${actor.role}`);
      const key = command.idempotencyKey?.(input) ?? undefined;
      if (key !== undefined) checkKey(key);
      for (;;) {
        attempts += 1;
        try {
          const outcome = await this.runOnce(command, input, key, actor, options);
          this.observer?.onCommand(command.name, "ok", (performance.now() - started) / 1000, attempts);
          return outcome;
        } catch (error) {
          const retryable = error instanceof ConcurrencyError || isRetryableTransactionError(error);
          if (!retryable || attempts >= MAX_ATTEMPTS) throw error;
          // Jittered backoff so that colliding transactions do not collide again.
          await delay(Math.random() * 5 * attempts);
        }
      }
    } catch (caught) {
      const error = asAppError(caught);
      this.observer?.onCommand(command.name, error instanceof AppError ? "rejected" : "error", (performance.now() - started) / 1000, attempts);
      throw error;
    }
  }

  private async runOnce<Input, Result>(
    command: CommandDefinition<Input, Result>,
    input: Input,
    key: string | undefined,
    actor: Extract<Actor, { kind: "user" }>,
    options: DispatchOptions,
  ): Promise<CommandOutcome<Result>> {
    const now = this.clock.now();
    return this.db.transaction(async (sql) => {
      if (key !== undefined) {
        const request = command.fingerprint ? command.fingerprint(input) : input;
        const replay = await claimKey(sql, { actorId: actor.id, command: command.name, key, request, now });
        if (replay) return { result: command.resultOf(replay.streamId), position: replay.position };
      }
      const { events, result, saved } = await command.handle(sql, input, { actor, now, newId: this.newId });
      // Issued behind the save without waiting for it: one round trip for both.
      const appended = appendEvents(sql, events, {
        correlationId: options.correlationId,
        causationId: options.causationId ?? null,
        actor: { id: actor.id, role: actor.role },
        command: command.name,
        ...(key !== undefined ? { idempotencyKey: key } : {}),
      }, now);
      // A failed save fails the append after it (the transaction is aborted): report the save's error.
      appended.catch(() => undefined);
      await saved;
      return { result, position: await appended };
    });
  }
}

/** Failures that are the caller's to handle, said in the contract's terms. */
function asAppError(error: unknown): unknown {
  if (error instanceof ConcurrencyError) return new AppError("CONFLICT", "the resource was changed concurrently; try again");
  // A unique index refused the write: a concurrent command created the same thing first.
  if (sqlState(error) === "23505") return new AppError("CONFLICT", "this conflicts with existing data");
  return error;
}
