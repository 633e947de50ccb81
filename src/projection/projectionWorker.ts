import type { Database } from "../db/database";
import type { Logger } from "../logger";
import { isConnectionError, isRetryableTransactionError } from "../shared/errors";
import { positionOf, type RecordedEvent } from "../shared/events";
import { advanceCheckpoint, isCheckpointMoved, markFailed, type Checkpoint } from "./checkpoints";
import type { EventSource } from "./logSource";
import { projectBatch, type AnyProjection } from "./projection";

export interface WorkerObserver {
  onBatch?(projection: string, events: number, seconds: number): void;
  onFailed?(projection: string): void;
}

/** Read rows and checkpoints are derived from the durable log: their commit need not wait for the disk. */
const PROJECTION_COMMIT = { asyncCommit: true } as const;

/** A failure of the infrastructure, not of the event: retry later, do not mark the projection failed. */
const isTransient = (error: unknown) => isRetryableTransactionError(error) || isConnectionError(error);

/**
 * Applies the events of one projection, batch by batch: the batch's checkpoint, rows and COMMIT
 * in one round trip after the read. A batch that fails is retried event by event to find the
 * poison event, which halts this projection alone (FAILED, with its error), visibly.
 */
export class ProjectionWorker {
  constructor(
    private readonly db: Database,
    readonly projection: AnyProjection,
    private readonly source: EventSource,
    private readonly options: { batchSize: number; logger: Logger; observer?: WorkerObserver },
  ) {}

  /**
   * Applies batches from `checkpoint` until the source has no more. Answers where the
   * projection stands: the checkpoint it reached, or undefined if the stored checkpoint moved
   * under it (a rebuild, an operator) and must be read again.
   */
  async run(checkpoint: Checkpoint, stopped: () => boolean): Promise<Checkpoint | undefined> {
    let at = checkpoint;
    let batchSize = this.options.batchSize;
    // After a failed batch, go one event at a time to find the poison event (or get past a flake).
    let singleStepsLeft = 0;
    while (at.status === "RUNNING" && !stopped()) {
      // A source that fails to answer (the database, the broker) ends the run: the next poll
      // tries again. Only applying an event can halt the projection.
      const events = await this.source.readAfter(at, batchSize);
      if (events.length === 0) return at;
      try {
        at = await this.apply(at, events);
        if (singleStepsLeft > 0 && --singleStepsLeft === 0) batchSize = this.options.batchSize;
        if (events.length < batchSize) return at;
      } catch (error) {
        if (isCheckpointMoved(error)) return undefined;
        if (isTransient(error)) throw error;
        if (batchSize > 1) {
          singleStepsLeft = batchSize;
          batchSize = 1;
          continue;
        }
        at = await this.halt(at, events[0], error);
      }
    }
    return at;
  }

  private async apply(from: Checkpoint, events: RecordedEvent[]): Promise<Checkpoint> {
    const started = performance.now();
    const to = positionOf(events.at(-1)!);
    const { changes, statements } = projectBatch(this.projection, events, this.projection.tables);
    await this.db.transaction(
      (tx) => tx.commit([advanceCheckpoint(this.projection.name, from, to, changes), ...statements]),
      PROJECTION_COMMIT,
    );
    this.options.observer?.onBatch?.(this.projection.name, events.length, (performance.now() - started) / 1000);
    return { ...from, ...to };
  }

  private async halt(at: Checkpoint, poison: RecordedEvent | undefined, error: unknown): Promise<Checkpoint> {
    const name = this.projection.name;
    const message = String((error as Error)?.message ?? error);
    this.options.logger.error(
      { err: error, projection: name, position: poison?.position?.toString() },
      "projector: poison event; projection halted",
    );
    await markFailed(this.db.sql, name, message, poison?.position ?? 0n);
    this.options.observer?.onFailed?.(name);
    return { ...at, status: "FAILED" };
  }
}
