import type { Database, SqlSession } from "../db/database";
import { sql } from "../db/sql";

/** Advisory locks (namespace, hashtext(name)) of one database: a live instance; a projection's lease. */
export const MEMBER_LOCKS = 72_708;
export const PROJECTION_LEASES = 72_709;

/**
 * The projections this instance leads, each by a lease of its own: a session advisory lock per
 * projection, held by one session that also marks this instance as live. The projections are
 * shared: every live instance (counted by those marks) takes at most its fair share, and gives
 * back what it holds beyond it, so a new instance gets work and a dead one's projections (its
 * session gone, its locks with it) are taken by the others on their next look.
 */
export class ProjectionLeases {
  private session: SqlSession | undefined;
  private readonly leased = new Set<string>();

  constructor(
    private readonly db: Database,
    private readonly names: readonly string[],
    /** Shown as the session's application_name: the `leader` of the projections query. */
    private readonly instanceId: string,
    /** The session died with leases held: they are gone. */
    private readonly onLost: (error: Error) => void,
  ) {}

  get held(): ReadonlySet<string> {
    return this.leased;
  }

  /** Takes free leases up to this instance's share, and gives back what it holds beyond it. */
  async rebalance(): Promise<void> {
    const session = await this.open();
    const [row] = await session.query(sql<{ members: number }>`
      SELECT count(DISTINCT pid)::int AS members FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND classid = ${MEMBER_LOCKS}::int::oid AND objsubid = 2
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    const share = Math.ceil(this.names.length / Math.max(row?.members ?? 1, 1));
    for (const name of [...this.leased].sort().reverse()) {
      if (this.leased.size <= share) break;
      await session.query(sql`SELECT pg_advisory_unlock(${PROJECTION_LEASES}::int, hashtext(${name}))`);
      this.leased.delete(name);
    }
    for (const name of this.names) {
      if (this.leased.size >= share) break;
      if (this.leased.has(name)) continue;
      const [lock] = await session.query(
        sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${PROJECTION_LEASES}::int, hashtext(${name})) AS locked`,
      );
      if (lock?.locked) this.leased.add(name);
    }
  }

  /** Gives every lease back (closing the session releases its locks). */
  async release(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    this.leased.clear();
    await session?.close().catch(() => undefined);
  }

  private async open(): Promise<SqlSession> {
    if (this.session) return this.session;
    const opened: SqlSession = await this.db.openSession((error) => {
      if (this.session !== opened) return;
      const held = this.leased.size > 0;
      void this.release(); // the next look opens a new session
      if (held) this.onLost(error);
    });
    try {
      // The session's name is how the projections query names the leader of what it holds.
      await opened.query(sql`SELECT set_config('application_name', ${this.instanceId}, false)`);
      // Tried, not waited for: a second instance with the same id goes uncounted rather than stuck.
      await opened.query(sql`SELECT pg_try_advisory_lock(${MEMBER_LOCKS}::int, hashtext(${this.instanceId}))`);
    } catch (error) {
      await opened.close();
      throw error;
    }
    this.session = opened;
    return opened;
  }
}
