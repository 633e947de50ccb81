import { setTimeout as delay } from "node:timers/promises";
import type { Database } from "../db/database";
import type { Actor } from "../shared/auth";
import type { Clock, IdGenerator } from "../shared/clock";
import { AppError, isRetryableTransactionError, sqlState } from "../shared/errors";
import type { EventData, LogPosition } from "../shared/events";
import { inStream, type CommandContext, type CommandDefinition, type CommandSettings } from "./command";
import { appendEvents, isStreamConflict, type Appended } from "./eventLog/eventLog";
import { checkKey, claimKey, keyRecord, replayOf, type KeyClaim } from "./idempotency";

export interface CommandOutcome<Result> {
  result: Result;
  /** Log position of the command's last event (of the first identical request, for a replay). */
  position: LogPosition;
  /** The types of the events it appended; not known for a replay. */
  eventTypes?: readonly string[];
}

export interface DispatchOptions {
  correlationId: string;
  causationId?: string | null;
}

export interface CommandObserver {
  onCommand(name: string, outcome: "ok" | "rejected" | "error", seconds: number, attempts: number): void;
  /** A client's command refused because the bus was overloaded() (shed). */
  onShed(): void;
}

/** How long a client whose command was shed is told to wait (Retry-After). */
const OVERLOADED_RETRY_AFTER_SECONDS = 1;

const MAX_ATTEMPTS = 6;

/**
 * The one transaction boundary of the write side: authorization by role, then ONE transaction of
 * two round trips: BEGIN, the idempotency key's claim and the command's load; then its save, the
 * event append and COMMIT. Serialization failures, deadlocks and stream version conflicts are
 * retried a bounded number of times; every other failure rolls the whole transaction back.
 */
export class CommandBus {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly newId: IdGenerator,
    private readonly settings: CommandSettings,
    private readonly observer?: CommandObserver,
  ) {}

  /**
   * True while the write database's transactions queue for a connection longer than
   * MUTATION_QUEUE_MS (a standing queue: see Backlog). A client's command is then refused at once
   * (shed), so that those admitted wait about that long, not until the connection timeout. The
   * system's own commands (the order expiry) do not ask.
   */
  overloaded(): boolean {
    return this.db.backlog.standing();
  }

  /** A client's command refused because overloaded(): OVERLOADED, retryable; nothing was written. Counted. */
  shed(): AppError {
    this.observer?.onShed();
    return new AppError("OVERLOADED", "the service is overloaded: try again in a second", {
      retryable: true,
      retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS,
    });
  }

  async dispatch<Input, State, Event extends EventData, Result, Row>(
    command: CommandDefinition<Input, State, Event, Result, Row>,
    input: Input,
    actor: Actor,
    options: DispatchOptions,
  ): Promise<CommandOutcome<Result>> {
    const started = performance.now();
    let attempts = 0;
    const observe = (outcome: "ok" | "rejected" | "error") =>
      this.observer?.onCommand(command.name, outcome, (performance.now() - started) / 1000, attempts);
    try {
      if (actor.kind === "anonymous") throw new AppError("UNAUTHENTICATED", "sign in to do this");
      if (!command.roles.includes(actor.role)) {
        throw new AppError("FORBIDDEN", `${command.name} is not allowed for role ${actor.role}`);
      }
      const key = command.idempotencyKey?.(input) ?? undefined;
      if (key !== undefined) checkKey(key);
      for (;;) {
        attempts += 1;
        try {
          const outcome = await this.runOnce(command, input, key, actor, options);
          observe("ok");
          return outcome;
        } catch (error) {
          const retryable = isStreamConflict(error) || isRetryableTransactionError(error);
          if (!retryable || attempts >= MAX_ATTEMPTS) throw error;
          // Jittered backoff so that colliding transactions do not collide again.
          await delay(Math.random() * 5 * attempts);
        }
      }
    } catch (caught) {
      const error = asAppError(caught);
      observe(error instanceof AppError ? "rejected" : "error");
      throw error;
    }
  }

  private async runOnce<Input, State, Event extends EventData, Result, Row>(
    command: CommandDefinition<Input, State, Event, Result, Row>,
    input: Input,
    key: string | undefined,
    actor: CommandContext["actor"],
    options: DispatchOptions,
  ): Promise<CommandOutcome<Result>> {
    const ctx: CommandContext = { actor, now: this.clock.now(), newId: this.newId, settings: this.settings };
    const claim: KeyClaim | undefined =
      key === undefined
        ? undefined
        : {
            actorId: actor.id,
            command: command.name,
            key,
            request: command.fingerprint?.(input) ?? input,
            now: ctx.now,
          };
    try {
      return await this.db.transaction(async (tx) => {
        // The claim runs first, so the load reads what is there after it (a concurrent duplicate
        // waits for the first request to end before its load runs).
        const load = command.load(input, ctx);
        const [taken, rows] = claim
          ? await tx.run([...claimKey(claim), load] as const).then(([, found, loaded]) => [found, loaded] as const)
          : [[], await tx.query(load)];
        if (taken.length > 0) throw new KeyTaken();
        const state = command.state(rows, input, ctx);
        const decided = command.decide(state, input, ctx);
        if (decided.length === 0)
          throw new Error(`${command.name} decided no event: every command records what it did`);
        const events = inStream(command.stream(state), decided);
        const result = command.result(state);
        const metadata = {
          correlationId: options.correlationId,
          causationId: options.causationId ?? null,
          actor: { id: actor.id, role: actor.role },
          command: command.name,
          ...(key !== undefined ? { idempotencyKey: key } : {}),
        };
        const committed = await tx.commit([
          ...command.save(state, events, ctx),
          appendEvents(events, metadata, ctx.now, claim && keyRecord(claim, result)),
        ]);
        const [appended] = committed.at(-1) as Appended[];
        return {
          result,
          position: { txId: BigInt(appended!.tx_id), position: BigInt(appended!.position) },
          eventTypes: events.map((e) => e.type),
        };
      });
    } catch (error) {
      if (!(error instanceof KeyTaken)) throw error;
    }
    // An earlier request with this key has committed (the claim waited for it): answer as it was
    // answered. This transaction is rolled back, with whatever the command loaded in it.
    const replay = await replayOf(this.db.sql, claim!);
    return { result: replay.result as Result, position: replay.position };
  }
}

/** Thrown inside the transaction to roll it back when the idempotency key was already used. */
class KeyTaken extends Error {}

/** Failures that are the caller's to handle, said in the contract's terms. */
function asAppError(error: unknown): unknown {
  if (isStreamConflict(error)) return new AppError("CONFLICT", "the resource was changed concurrently; try again");
  // A unique index refused the write: a concurrent command created the same thing first.
  if (sqlState(error) === "23505") return new AppError("CONFLICT", "this conflicts with existing data");
  return error;
}
