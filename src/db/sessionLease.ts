import type { Database, SqlSession } from "./database";
import { sql } from "./sql";

/**
 * A lease held by one instance at a time: a session advisory lock (namespace, hashtext(name)) in
 * a database. The holder keeps it while its session lives; when its process dies, the session
 * ends and the lock with it, and the next instance to try takes it. The session's
 * application_name is the holder's instance id, so operators (and status queries) can name it.
 */
export class SessionLease {
  private session: SqlSession | undefined;

  constructor(
    private readonly db: Database,
    private readonly namespace: number,
    private readonly name: string,
    private readonly instanceId: string,
    /** The session died while the lease was held: it is gone. */
    private readonly onLost: (error: Error) => void,
  ) {}

  get held(): boolean {
    return this.session !== undefined;
  }

  /** Takes the lease if it is free; true when this instance holds it (now or already). Throws if the database fails. */
  async tryAcquire(): Promise<boolean> {
    if (this.session) return true;
    const session: SqlSession = await this.db.openSession((error) => {
      if (this.session !== session) return;
      this.session = undefined;
      void session.close().catch(() => undefined);
      this.onLost(error);
    });
    try {
      await session.query(sql`SELECT set_config('application_name', ${this.instanceId}, false)`);
      const [lock] = await session.query(
        sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${this.namespace}::int, hashtext(${this.name})) AS locked`,
      );
      if (!lock?.locked) {
        await session.close();
        return false;
      }
    } catch (error) {
      await session.close().catch(() => undefined);
      throw error;
    }
    this.session = session;
    return true;
  }

  /** Gives the lease back (closing the session releases the lock). */
  async release(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.close().catch(() => undefined);
  }
}
