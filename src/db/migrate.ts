import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Database } from "./database";
import { sqlState } from "../shared/errors";

// Prisma's migrate engine cannot run offline here (see README "Prisma offline"), so the
// project applies prisma/migrations itself and keeps Prisma's own bookkeeping table: on a
// machine with the engine, `prisma migrate deploy` sees the same state.
export const MIGRATIONS_DIR = resolve(import.meta.dirname, "../../prisma/migrations");
const MIGRATION_LOCK_KEY = 72_707_001; // any constant; shared by every instance of this app

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    }),
  );
}

const BOOKKEEPING = `CREATE TABLE IF NOT EXISTS "public"."_prisma_migrations" (
  "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum"            VARCHAR(64) NOT NULL,
  "finished_at"         TIMESTAMPTZ,
  "migration_name"      VARCHAR(255) NOT NULL,
  "logs"                TEXT,
  "rolled_back_at"      TIMESTAMPTZ,
  "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

/**
 * Which sides of each migration a database holds (this project's own bookkeeping, beside
 * Prisma's). A migration in _prisma_migrations without a row here was applied whole.
 */
const PARTS = `CREATE TABLE IF NOT EXISTS "public"."_shop_migration_parts" (
  "migration_name" VARCHAR(255) NOT NULL,
  "side"           TEXT NOT NULL CHECK ("side" IN ('write', 'read')),
  "applied_at"     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY ("migration_name", "side")
)`;

export class MigrationError extends Error {}

/**
 * Which side's tables a database holds: both (one database), or only the write side (write
 * model, event log) or the read side (read tables, checkpoints) when READ_DATABASE_URL names
 * a database of its own.
 */
export type MigrationSide = "both" | "write" | "read";

/**
 * The part of a migration that a database of `side` applies. Every statement names the schema
 * it touches ("write" or "read"); the split is made statement by statement, so the files keep
 * the checksums they were applied with. A statement that names neither (a SET, an extension)
 * goes to both databases; one that names both is refused: it could run on neither.
 */
export function sqlForSide(migration: Migration, side: MigrationSide): string {
  if (side === "both") return migration.sql;
  const other = side === "write" ? "read" : "write";
  return splitStatements(migration.sql)
    .filter((statement) => {
      const code = statement.replace(/--[^\n]*/g, "");
      const mine = namesSchema(side).test(code);
      const theirs = namesSchema(other).test(code);
      if (mine && theirs)
        throw new MigrationError(
          `migration ${migration.name}: a statement touches both sides: ${statement.slice(0, 120)}`,
        );
      return !theirs;
    })
    .join(";\n");
}

/** `"read".`, `read.` or `SCHEMA [IF NOT EXISTS] "read"`. */
const namesSchema = (schema: string) =>
  new RegExp(`(?<![\\w"])"?${schema}"?\\s*\\.|SCHEMA\\s+(IF\\s+NOT\\s+EXISTS\\s+)?"?${schema}\\b`, "i");

/** The statements of a SQL script, split at top-level semicolons (not inside quotes, comments or $$ bodies). */
export function splitStatements(script: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  const push = (end: number) => {
    const text = script.slice(start, end).trim();
    if (text.replace(/--[^\n]*/g, "").trim()) statements.push(text);
  };
  while (i < script.length) {
    const c = script[i]!;
    if (c === "-" && script[i + 1] === "-") {
      const end = script.indexOf("\n", i);
      i = end < 0 ? script.length : end + 1;
    } else if (c === "/" && script[i + 1] === "*") {
      const end = script.indexOf("*/", i + 2);
      i = end < 0 ? script.length : end + 2;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      // a doubled quote inside is an escaped quote: the loop goes on past it
      while (j < script.length && !(script[j] === c && script[j + 1] !== c)) j += script[j] === c ? 2 : 1;
      i = j + 1;
    } else if (c === "$") {
      const tag = /^\$[A-Za-z_]*\$/.exec(script.slice(i, i + 64))?.[0];
      if (tag) {
        const end = script.indexOf(tag, i + tag.length);
        i = end < 0 ? script.length : end + tag.length;
      } else i++;
    } else if (c === ";") {
      push(i);
      start = ++i;
    } else i++;
  }
  push(script.length);
  return statements;
}

export interface MigrateOptions {
  dir?: string;
  side?: MigrationSide;
}

/**
 * Applies pending migrations, each in its own transaction, under an advisory lock: of each, the
 * part for the database's side, and a part it lacks when the database takes another side later
 * (a write database that becomes a whole one). Returns the names applied (in whole or part).
 */
export async function migrate(
  db: Database,
  { dir = MIGRATIONS_DIR, side = "both" }: MigrateOptions = {},
): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  const session = await db.openSession();
  try {
    await session.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    await session.exec(BOOKKEEPING);
    await session.exec(PARTS);
    const rows = await session.query<{ migration_name: string; checksum: string }>(
      `SELECT migration_name, checksum FROM "public"."_prisma_migrations"
        WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    const applied = new Map(rows.map((r) => [r.migration_name, r.checksum]));
    const parts = new Map<string, Set<string>>();
    for (const r of await session.query<{ migration_name: string; side: string }>(
      `SELECT migration_name, side FROM "public"."_shop_migration_parts"`,
    ))
      parts.set(r.migration_name, (parts.get(r.migration_name) ?? new Set()).add(r.side));
    const wanted = side === "both" ? (["write", "read"] as const) : [side];
    const done: string[] = [];
    for (const m of migrations) {
      const checksum = applied.get(m.name);
      if (checksum !== undefined && checksum !== m.checksum)
        throw new MigrationError(`migration ${m.name} was changed after it was applied`);
      // Applied whole (Prisma's row without parts of ours), or the parts this database needs now.
      const has = checksum === undefined ? new Set<string>() : (parts.get(m.name) ?? new Set(["write", "read"]));
      const missing = wanted.filter((s) => !has.has(s));
      if (missing.length === 0) continue;
      await session.exec("BEGIN");
      try {
        const sql = sqlForSide(m, missing.length === 2 ? "both" : missing[0]!);
        if (sql) await session.exec(sql);
        if (checksum === undefined)
          await session.query(
            `INSERT INTO "public"."_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
             VALUES ($1, $2, $3, now(), now(), 1)`,
            [randomUUID(), m.checksum, m.name],
          );
        // A database with parts records each; one applied whole from the start needs no row (see PARTS).
        if (side !== "both" || checksum !== undefined)
          for (const part of [...has, ...missing])
            await session.query(
              `INSERT INTO "public"."_shop_migration_parts" (migration_name, side) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
              [m.name, part],
            );
        await session.exec("COMMIT");
      } catch (error) {
        await session.exec("ROLLBACK").catch(() => undefined);
        throw new MigrationError(`migration ${m.name} failed: ${(error as Error).message}`);
      }
      done.push(m.name);
    }
    return done;
  } finally {
    await session.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await session.close();
  }
}

/** For /readyz: which of the expected migrations the database lacks. */
export async function pendingMigrations(db: Database, expected: string[]): Promise<string[]> {
  const rows = await db.prisma
    .$queryRawUnsafe<{ migration_name: string }[]>(
      `SELECT migration_name FROM "public"."_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    )
    .catch((error: unknown) => {
      // No migrations table yet: nothing applied. Any other failure (the database unreachable)
      // is not "migrations missing": the caller reports it as it is.
      if (sqlState(error) === "42P01") return [];
      throw error;
    });
  const applied = new Set(rows.map((r) => r.migration_name));
  return expected.filter((name) => !applied.has(name));
}
