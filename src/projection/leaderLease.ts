import type { Database, SqlSession } from "../db/database";
import { sql } from "../db/sql";

/**
 * Leadership by a session advisory lock: held while the session that took it lives. A standby
 * keeps its session between tries instead of reconnecting every time.
 */
export class LeaderLease {
  private session: SqlSession | undefined;
  private isHeld = false;

  constructor(
    private readonly db: Database,
    private readonly key: number,
    /** The session of the lock we held died: the lock went with it. */
    private readonly onLost: (error: Error) => void,
  ) {}

  get held(): boolean {
    return this.isHeld;
  }

  /** True if the lock is ours now (or was already). */
  async tryAcquire(): Promise<boolean> {
    if (this.isHeld) return true;
    if (!this.session) {
      const opened: SqlSession = await this.db.openSession((error) => {
        if (this.session !== opened) return;
        const held = this.isHeld;
        void this.release(); // a standby opens a new session on its next try
        if (held) this.onLost(error);
      });
      this.session = opened;
    }
    const [row] = await this.session.query(
      sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${this.key}) AS locked`,
    );
    this.isHeld = row?.locked === true;
    return this.isHeld;
  }

  /** Gives the lock up (closing the session releases it), or the standby's session. */
  async release(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    this.isHeld = false;
    await session?.close().catch(() => undefined);
  }
}
