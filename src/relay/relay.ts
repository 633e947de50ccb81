import type { Database } from "../db/database";
import { SessionLease } from "../db/sessionLease";
import type { Logger } from "../logger";
import type { LogPosition } from "../shared/events";
import { logSource, type EventSource, type SourceWatch } from "../projection/logSource";
import { EventStream, isTailMoved, type StreamTail } from "./eventStream";

/** Advisory lock namespace (hashtext(stream name)): the relay's lease, in the write database. */
export const RELAY_LEASE = 72_710;

export interface RelayObserver {
  onRelayed?(events: number): void;
  onRelayLag?(events: number, seconds: number): void;
  onRelayLeadership?(leading: boolean): void;
}

export interface RelayOptions {
  servers: string[];
  stream: string;
  /** The stream's replicas (a NATS cluster). */
  replicas: number;
  batchSize: number;
  /** How often a standby tries the lease, and the leader measures its lag (and looks again for held-back events). */
  pollMs: number;
  /** How long a batch's acks may take before the relay starts over from the stream's tail. */
  ackTimeoutMs: number;
  instanceId: string;
  logger: Logger;
  observer?: RelayObserver;
}

/**
 * Copies the event log to NATS JetStream, every event once and in the log's reading order.
 *
 * Exactly one relay publishes: the holder of a session advisory lock in the write database
 * (the others try it every pollMs, so a standby takes over within a poll or two of a leader's
 * death, when its session ends). The leader keeps no state of its own: it reads the stream's
 * last message (its log position) at start and after every failure, reads the log gap-safely
 * after that position, and publishes each event expecting the stream's last sequence to be the
 * one before it. A publish that lands after another relay's, or after a retry of its own that
 * did land, is refused by the server; the relay then reads the tail again and goes on from
 * there. So the stream can neither skip an event (the gap-safe read never passes an event that
 * can still commit) nor hold one twice (each sequence is taken by exactly one message).
 */
export class Relay {
  private readonly source: EventSource;
  private stopped = true;
  private readonly lease: SessionLease;
  private stream: EventStream | undefined;
  private watch: SourceWatch | undefined;
  private loop: Promise<void> | undefined;
  private poll: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private tail: StreamTail | undefined;
  private measured: { events: number; seconds: number } | undefined;

  constructor(
    private readonly write: Database,
    private readonly options: RelayOptions,
  ) {
    this.source = logSource(write);
    this.lease = new SessionLease(write, RELAY_LEASE, options.stream, options.instanceId, () => {
      this.options.logger.warn("relay: lost the session of its lease; stops publishing");
      this.resigned(true);
    });
  }

  get isLeader(): boolean {
    return this.lease.held;
  }

  /** How far the stream was behind the log when this leader last measured (every pollMs); undefined unless it leads. */
  get lag(): { events: number; seconds: number } | undefined {
    return this.lease.held ? this.measured : undefined;
  }

  /** Where the stream ends, as this leader last knew it. */
  get position(): LogPosition | undefined {
    return this.tail?.position;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.tryLead();
    this.poll = setInterval(() => void this.tryLead().then(() => this.measureLag()), this.options.pollMs);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    this.wake();
    await this.loop;
    await this.resign();
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private async tryLead(): Promise<void> {
    if (this.stopped || this.lease.held || this.loop) return;
    try {
      if (!(await this.lease.tryAcquire())) return;
    } catch (error) {
      this.options.logger.warn({ err: error }, "relay: could not try the lease");
      return;
    }
    if (this.stopped) {
      await this.lease.release();
      return;
    }
    this.options.logger.info({ stream: this.options.stream }, "relay: leads; publishing the event log");
    this.options.observer?.onRelayLeadership?.(true);
    this.loop = this.lead().finally(() => (this.loop = undefined));
  }

  private async resign(): Promise<void> {
    const leading = this.lease.held;
    await this.lease.release();
    this.resigned(leading);
  }

  private resigned(leading: boolean): void {
    this.wake();
    if (leading) this.options.observer?.onRelayLeadership?.(false);
  }

  /** The leader's loop: connect, ensure the stream, then relay until stopped or no longer leader. */
  private async lead(): Promise<void> {
    let backoffMs = 100;
    while (!this.stopped && this.lease.held) {
      try {
        this.stream ??= await EventStream.connect({
          servers: this.options.servers,
          name: this.options.stream,
          connectionName: `relay ${this.options.instanceId}`,
        });
        await this.stream.ensure(this.options.replicas);
        this.watch ??= await this.source.watch(() => this.wake(), this.options.pollMs);
        this.tail = await this.stream.tail();
        await this.relay(this.stream);
        backoffMs = 100;
      } catch (error) {
        this.tail = undefined;
        const level = isTailMoved(error) ? "info" : "warn";
        this.options.logger[level]({ err: error }, "relay: starting over from the stream's tail");
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
    }
    await this.watch?.close().catch(() => undefined);
    this.watch = undefined;
    await this.stream?.close();
    this.stream = undefined;
  }

  /** Publishes what the log holds after the tail, batch by batch; waits for more when there is none. */
  private async relay(stream: EventStream): Promise<void> {
    let progressed = false;
    while (!this.stopped && this.lease.held) {
      this.woken = false;
      const events = await this.source.readAfter(this.tail!.position, this.options.batchSize);
      if (events.length > 0) {
        this.tail = await stream.append(this.tail!, events, this.options.ackTimeoutMs);
        this.options.observer?.onRelayed?.(events.length);
        progressed = true;
        continue;
      }
      // Events held back by an older open transaction: looked for again soon (sooner after progress).
      await this.watch?.idle(progressed);
      progressed = false;
      if (this.woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.pollMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  private async measureLag(): Promise<void> {
    const at = this.tail?.position;
    if (!this.lease.held || !at) return;
    try {
      const backlog = await this.source.backlogAfter(at);
      const seconds = backlog.oldestAt ? Math.max(0, (Date.now() - backlog.oldestAt.getTime()) / 1000) : 0;
      this.measured = { events: backlog.events, seconds };
      this.options.observer?.onRelayLag?.(backlog.events, seconds);
    } catch (error) {
      this.options.logger.warn({ err: error }, "relay: could not measure its lag");
    }
  }
}
