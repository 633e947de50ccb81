import { describe, expect, it } from "vitest";
import { sql } from "../../src/db/sql";

describe("the sql tag", () => {
  it("sends every value as a parameter, never as SQL text", () => {
    const name = "Robert'); DROP TABLE products; --";
    const statement = sql`SELECT * FROM t WHERE name = ${name} AND n > ${3}`;
    expect(statement.text).toBe("SELECT * FROM t WHERE name = $1 AND n > $2");
    expect(statement.values).toEqual([name, 3]);
  });

  it("quotes identifiers, doubling a quote inside one", () => {
    const statement = sql`INSERT INTO ${sql.identifier("read", 'odd"name')} (id) VALUES (${1})`;
    expect(statement.text).toBe('INSERT INTO "read"."odd""name" (id) VALUES ($1)');
    expect(statement.values).toEqual([1]);
  });

  it("splices a fragment in with its parameters renumbered after the ones before it", () => {
    const moved = sql.fragment`UPDATE x SET a = a + ${5} WHERE id = ${"p"}`;
    const statement = sql`WITH first AS (SELECT ${"a"}), moved AS (${moved}) SELECT ${"b"}`;
    expect(statement.text).toBe(
      "WITH first AS (SELECT $1), moved AS (UPDATE x SET a = a + $2 WHERE id = $3) SELECT $4",
    );
    expect(statement.values).toEqual(["a", 5, "p", "b"]);
  });

  it("gives a call site the same text every time, so its prepared statement is named once", () => {
    const at = (id: number) => sql`SELECT * FROM t WHERE id = ${id}`;
    const [a, b] = [at(1), at(2)];
    expect(a.text).toBe(b.text);
    expect([a.values, b.values]).toEqual([[1], [2]]);
  });

  it("joins fragments with a separator, each keeping its parameters in order", () => {
    const conditions = [sql.fragment`a = ${1}`, sql.fragment`b = ${"x"}`, sql.fragment`c IS NULL`];
    const statement = sql`SELECT * FROM t WHERE ${sql.join(conditions, " AND ")} LIMIT ${10}`;
    expect(statement.text).toBe("SELECT * FROM t WHERE a = $1 AND b = $2 AND c IS NULL LIMIT $3");
    expect(statement.values).toEqual([1, "x", 10]);
    expect(sql`SELECT 1 ${sql.join([], " AND ")}`.text).toBe("SELECT 1 ");
    expect(sql`SELECT 1 ${sql.where(conditions.slice(0, 2))}`.text).toBe("SELECT 1 WHERE a = $1 AND b = $2");
    expect(sql`SELECT 1 ${sql.where([])}`.text).toBe("SELECT 1 ");
  });

  it("splices the program's own text in as it is, without parameters", () => {
    const statement = sql`SELECT ${sql.trusted("id, lower(name) AS key")} FROM t WHERE id = ${7}`;
    expect(statement.text).toBe("SELECT id, lower(name) AS key FROM t WHERE id = $1");
    expect(statement.values).toEqual([7]);
  });
});
