import { describe, expect, it } from "vitest";
import { MigrationError, splitStatements, sqlForSide } from "../../src/db/migrate";

const migration = (sql: string) => ({ name: "m", sql, checksum: "" });

describe("splitting a migration by side", () => {
  it("splits at top-level semicolons only", () => {
    const script = `-- a comment; not a split
CREATE FUNCTION "read".f() RETURNS text LANGUAGE sql AS $$ SELECT 'a;b' $$;
/* block; comment */ SELECT 'it''s; one';
DO $body$ BEGIN PERFORM 1; END $body$;
SELECT "semi;colon" FROM t;`;
    expect(splitStatements(script)).toEqual([
      `-- a comment; not a split\nCREATE FUNCTION "read".f() RETURNS text LANGUAGE sql AS $$ SELECT 'a;b' $$`,
      `/* block; comment */ SELECT 'it''s; one'`,
      `DO $body$ BEGIN PERFORM 1; END $body$`,
      `SELECT "semi;colon" FROM t`,
    ]);
  });

  it("gives each side the statements that name its schema, and both the ones that name neither", () => {
    const m = migration(`CREATE SCHEMA IF NOT EXISTS "write";
CREATE SCHEMA IF NOT EXISTS "read";
SET lock_timeout = '5s';
CREATE TABLE "write"."events" (id int);
-- about the read side
CREATE TABLE read.products (id int);
ALTER TABLE "read" . "products" ADD COLUMN already_read int;`);
    expect(splitStatements(sqlForSide(m, "write"))).toEqual([
      `CREATE SCHEMA IF NOT EXISTS "write"`,
      `SET lock_timeout = '5s'`,
      `CREATE TABLE "write"."events" (id int)`,
    ]);
    expect(splitStatements(sqlForSide(m, "read"))).toEqual([
      `CREATE SCHEMA IF NOT EXISTS "read"`,
      `SET lock_timeout = '5s'`,
      `-- about the read side\nCREATE TABLE read.products (id int)`,
      `ALTER TABLE "read" . "products" ADD COLUMN already_read int`,
    ]);
    expect(sqlForSide(m, "both")).toBe(m.sql);
  });

  it("refuses a statement that touches both sides", () => {
    const m = migration(`INSERT INTO "read"."products" SELECT * FROM "write"."products";`);
    expect(() => sqlForSide(m, "read")).toThrow(MigrationError);
    expect(() => sqlForSide(m, "read")).toThrow(/touches both sides/);
  });
});
