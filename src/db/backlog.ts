/**
 * Whether a database's transactions queue for a connection more than a moment, after the test of
 * Controlled Delay (CoDel, Nichols and Jacobson; used for server queues by Facebook's Wangle).
 * A burst waits, and drains; a queue in which even the luckiest transaction of the last window
 * (WINDOW_MS) waited longer than the target is standing: more arrives than the database serves,
 * and each arrival only makes the wait of every later one longer. Callers that can be told "not
 * now" are refused at once while it stands and holds more than the target's worth of work (its
 * length against the connections handed out per second), so that those admitted wait about the
 * target (MUTATION_QUEUE_MS), not the connection timeout, and the queue stays long enough to keep
 * every connection busy.
 */
export class Backlog {
  /** How long the shortest wait must have stayed above the target (CoDel's interval). */
  static readonly WINDOW_MS = 100;
  private waiting = 0;
  private windowStart: number;
  private windowMin = Infinity;
  private windowGranted = 0;
  /** The shortest wait of the last window in which anything got a connection. */
  private lastMin = 0;
  /** Connections handed out per millisecond in that window. */
  private lastRate = 0;

  /** targetMs 0: never standing. */
  constructor(
    private readonly targetMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.windowStart = now();
  }

  /** Transactions waiting for a connection now. */
  get queued(): number {
    return this.waiting;
  }

  /** Runs the wait for a connection (acquire), timing it. */
  async wait<T>(acquire: () => Promise<T>): Promise<T> {
    const asked = this.now();
    this.waiting += 1;
    try {
      return await acquire();
    } finally {
      this.waiting -= 1;
      const at = this.now();
      this.roll(at);
      this.windowMin = Math.min(this.windowMin, at - asked);
      this.windowGranted += 1;
      // An empty queue ends it: what waits next is a new queue, judged on its own waits.
      if (this.waiting === 0) {
        this.lastMin = 0;
        this.startWindow(at);
      }
    }
  }

  /**
   * True while the queue stands (no transaction of the last window got its connection within the
   * target) and more wait than the connections handed out in the target's time.
   */
  standing(): boolean {
    if (this.targetMs <= 0 || this.waiting === 0) return false;
    this.roll(this.now());
    return this.lastMin > this.targetMs && this.waiting >= this.lastRate * this.targetMs;
  }

  private roll(at: number): void {
    const elapsed = at - this.windowStart;
    if (elapsed < Backlog.WINDOW_MS) return;
    // A window in which nothing got a connection tells nothing new (the database may hang: its
    // deadlines, not this, answer that).
    if (this.windowGranted > 0) {
      this.lastMin = this.windowMin;
      this.lastRate = this.windowGranted / elapsed;
    }
    this.startWindow(at);
  }

  private startWindow(at: number): void {
    this.windowMin = Infinity;
    this.windowGranted = 0;
    this.windowStart = at;
  }
}
