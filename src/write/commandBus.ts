import { setTimeout as delay } from "node:timers/promises";
import { inIssueOrder, type Database } from "../db/database";
import { appendEvents, ConcurrencyError } from "../eventLog/eventLog";
import type { Actor } from "../shared/auth";
import { AppError, isRetryableTransactionError, sqlState } from "../shared/errors";
import type { Clock, IdGenerator } from "../shared/clock";
import type { LogPosition } from "../shared/events";
import type { CommandDefinition } from "./command";
import { checkKey, claimKey, replayOf, type KeyClaim } from "./idempotency";

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
 * The one transaction boundary of the write side: authorization by role, then in ONE transaction
 * the client's idempotency key claimed first, the handler (load → decide → save) and the event
 * append. Statements leave pipelined, so a command takes three round trips: BEGIN, the claim and
 * the handler's load; the save and the append; COMMIT. Serialization failures, deadlocks and
 * optimistic-concurrency conflicts are retried a bounded number of times; every other failure
 * rolls the whole transaction back.
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
      if (!command.roles.includes(actor.role))
        throw new AppError("FORBIDDEN", `${command.name} is not allowed for role ${actor.role}`);
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
      this.observer?.onCommand(
        command.name,
        error instanceof AppError ? "rejected" : "error",
        (performance.now() - started) / 1000,
        attempts,
      );
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
    const claim: KeyClaim | undefined =
      key === undefined
        ? undefined
        : {
            actorId: actor.id,
            command: command.name,
            key,
            request: command.fingerprint ? command.fingerprint(input) : input,
            now,
          };
    try {
      return await this.db.transaction(async (sql) => {
        // The claim and the handler's first statement (its load) leave in one round trip; the
        // server runs the claim first, so the handler reads what is there after it.
        const claimed = claim ? claimKey(sql, claim) : Promise.resolve(true);
        const handled = command.handle(sql, input, { actor, now, newId: this.newId });
        // Both settle before anything else: no statement of the handler's may follow the ROLLBACK.
        const [ours, decided] = await Promise.allSettled([claimed, handled]);
        if (ours.status === "rejected" || !ours.value) {
          if (decided.status === "fulfilled") decided.value.saved.catch(() => undefined); // rolled back unseen
          if (ours.status === "rejected") throw ours.reason;
          throw new KeyTaken();
        }
        if (decided.status === "rejected") throw decided.reason;
        const { events, result, saved } = decided.value;
        // Issued behind the save without waiting for it: one round trip for both.
        const appended = appendEvents(
          sql,
          events,
          {
            correlationId: options.correlationId,
            causationId: options.causationId ?? null,
            actor: { id: actor.id, role: actor.role },
            command: command.name,
            ...(key !== undefined ? { idempotencyKey: key } : {}),
          },
          now,
        );
        const [, position] = await inIssueOrder(saved, appended);
        return { result, position };
      });
    } catch (error) {
      if (!(error instanceof KeyTaken)) throw error;
    }
    // An earlier request with this key has committed (the claim waited for it): answer as it was
    // answered. This transaction is rolled back, with whatever the handler did in it.
    const replay = await replayOf(this.db.sql, claim!);
    return { result: command.resultOf(replay.streamId), position: replay.position };
  }
}

/** Thrown inside the transaction to roll it back when the idempotency key was already used. */
class KeyTaken extends Error {}

/** Failures that are the caller's to handle, said in the contract's terms. */
function asAppError(error: unknown): unknown {
  if (error instanceof ConcurrencyError)
    return new AppError("CONFLICT", "the resource was changed concurrently; try again");
  // A unique index refused the write: a concurrent command created the same thing first.
  if (sqlState(error) === "23505") return new AppError("CONFLICT", "this conflicts with existing data");
  return error;
}
