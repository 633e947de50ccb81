import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../support/db";

/*
 * The SQL migrations are the source of truth for the database; prisma/schema.prisma must
 * describe the same tables, or Prisma queries fail at run time (or, worse, silently miss a
 * column). Prisma's own `getDMMF` lives in @prisma/internals, which is not a dependency here
 * (the `prisma` CLI bundles it without exporting it), and `prisma migrate diff` needs the
 * schema engine binary that cannot be had offline. So: a small parser of the model blocks,
 * compared with information_schema of a freshly migrated database.
 */

const SCHEMA_FILE = resolve(import.meta.dirname, "../../prisma/schema.prisma");

interface PrismaField {
  name: string;
  type: string;
  optional: boolean;
  list: boolean;
  column: string;
  nativeType: string | undefined;
  nativeArgs: string | undefined;
  unsupported: string | undefined;
  id: boolean;
  unique: boolean;
  attributes: string;
}

interface PrismaModel {
  name: string;
  schema: string | undefined;
  table: string;
  fields: PrismaField[];
  /** Columns of @id / @@id, in order. */
  primaryKey: string[];
  /** Column lists of @unique / @@unique. */
  uniques: string[][];
}

interface PrismaSchema {
  schemas: string[];
  enums: Set<string>;
  models: PrismaModel[];
}

/** Drops // and /// comments outside string literals. */
function stripComments(text: string): string {
  return text
    .split("\n")
    .map((line) => {
      let inString = false;
      for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (c === "\\" && inString) i++;
        else if (c === '"') inString = !inString;
        else if (!inString && c === "/" && line[i + 1] === "/") return line.slice(0, i);
      }
      return line;
    })
    .join("\n");
}

/** The argument list of `@name(...)` with balanced parentheses, or undefined. */
function attributeArgs(text: string, name: string): string | undefined {
  const re = new RegExp(`(^|\\s)${name.replace(/[.@]/g, (c) => `\\${c}`)}(?![\\w.])`, "g");
  const m = re.exec(text);
  if (!m) return undefined;
  let i = m.index + m[0].length;
  if (text[i] !== "(") return "";
  let depth = 0;
  const start = i + 1;
  for (; i < text.length; i++) {
    if (text[i] === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) return text.slice(start, i);
  }
  throw new Error(`unbalanced parentheses in ${name}: ${text}`);
}

const stringArg = (args: string | undefined) =>
  args === undefined ? undefined : /^\s*(?:name\s*:\s*)?"([^"]*)"/.exec(args)?.[1];
const fieldList = (args: string) =>
  (/\[([^\]]*)\]/.exec(args)?.[1] ?? "")
    .split(",")
    .map((s) => s.trim().replace(/\(.*$/, ""))
    .filter(Boolean);

function parsePrismaSchema(source: string): PrismaSchema {
  const text = stripComments(source);
  const blocks = [...text.matchAll(/^\s*(model|enum|datasource|generator|view|type)\s+(\w+)\s*\{([\s\S]*?)^\s*\}/gm)];
  const schemas = blocks
    .filter((b) => b[1] === "datasource")
    .flatMap(
      (b) =>
        /schemas\s*=\s*\[([^\]]*)\]/
          .exec(b[3]!)?.[1]
          ?.match(/"[^"]*"/g)
          ?.map((s) => s.slice(1, -1)) ?? [],
    );
  const enums = new Set(blocks.filter((b) => b[1] === "enum").map((b) => b[2]!));
  const modelNames = new Set(
    blocks.filter((b) => b[1] === "model" || b[1] === "view" || b[1] === "type").map((b) => b[2]!),
  );

  const models: PrismaModel[] = [];
  for (const [, kind, name, body] of blocks) {
    if (kind !== "model") continue;
    const lines = body!
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    const blockAttrs = lines.filter((l) => l.startsWith("@@")).join(" ");
    if (attributeArgs(blockAttrs, "@@ignore") !== undefined) continue;
    const fields: PrismaField[] = [];
    for (const line of lines) {
      if (line.startsWith("@@")) continue;
      const m = /^(\w+)\s+(Unsupported\("[^"]*"\)|\w+)(\[\])?(\?)?\s*(.*)$/.exec(line);
      if (!m) throw new Error(`cannot parse field of model ${name}: ${line}`);
      const [, fieldName, type, list, optional, attributes] = m as unknown as [
        string,
        string,
        string,
        string | undefined,
        string | undefined,
        string,
      ];
      if (modelNames.has(type) || attributeArgs(attributes, "@ignore") !== undefined) continue; // relation fields have no column
      const native = /(?:^|\s)@db\.(\w+)(?:\(([^)]*)\))?/.exec(attributes);
      fields.push({
        name: fieldName,
        type: type.startsWith("Unsupported") ? "Unsupported" : type,
        unsupported: /^Unsupported\("([^"]*)"\)$/.exec(type)?.[1],
        optional: optional === "?",
        list: list === "[]",
        column: stringArg(attributeArgs(attributes, "@map")) ?? fieldName,
        nativeType: native?.[1],
        nativeArgs: native?.[2],
        id: attributeArgs(attributes, "@id") !== undefined,
        unique: attributeArgs(attributes, "@unique") !== undefined,
        attributes,
      });
    }
    const columnOf = (fieldName: string) =>
      fields.find((f) => f.name === fieldName)?.column ?? `<unknown field ${fieldName}>`;
    const compositeId = attributeArgs(blockAttrs, "@@id");
    const uniques = [...blockAttrs.matchAll(/@@unique\s*\(/g)].map((u) =>
      fieldList(attributeArgs(blockAttrs.slice(u.index), "@@unique")!).map(columnOf),
    );
    models.push({
      name: name!,
      schema: stringArg(attributeArgs(blockAttrs, "@@schema")),
      table: stringArg(attributeArgs(blockAttrs, "@@map")) ?? name!,
      fields,
      primaryKey:
        compositeId !== undefined
          ? fieldList(compositeId).map(columnOf)
          : fields.filter((f) => f.id).map((f) => f.column),
      uniques: [...fields.filter((f) => f.unique).map((f) => [f.column]), ...uniques],
    });
  }
  return { schemas, enums, models };
}

/** What information_schema.columns says for a Prisma field on PostgreSQL: data_type, and udt_name where it matters. */
function expectedColumnType(
  field: PrismaField,
  enums: Set<string>,
): { dataType: string; udtName?: string; precision?: number } {
  if (field.list) return { dataType: "ARRAY" };
  if (field.unsupported) return { dataType: field.unsupported, udtName: field.unsupported };
  if (enums.has(field.type)) return { dataType: "USER-DEFINED", udtName: field.type };
  const native = field.nativeType;
  const precision = field.nativeArgs ? Number(field.nativeArgs) : 3;
  switch (field.type) {
    case "String":
      return (
        {
          Uuid: { dataType: "uuid" },
          VarChar: { dataType: "character varying" },
          Char: { dataType: "character" },
          Xml: { dataType: "xml" },
          Inet: { dataType: "inet" },
          Citext: { dataType: "USER-DEFINED", udtName: "citext" },
        }[native ?? ""] ?? { dataType: "text" }
      );
    case "Int":
      return { dataType: native === "SmallInt" ? "smallint" : "integer" };
    case "BigInt":
      return { dataType: "bigint" };
    case "Float":
      return { dataType: native === "Real" ? "real" : "double precision" };
    case "Decimal":
      return { dataType: native === "Money" ? "money" : "numeric" };
    case "Boolean":
      return { dataType: "boolean" };
    case "DateTime":
      if (native === "Date") return { dataType: "date" };
      if (native === "Time") return { dataType: "time without time zone", precision };
      if (native === "Timetz") return { dataType: "time with time zone", precision };
      return {
        dataType: native === "Timestamptz" ? "timestamp with time zone" : "timestamp without time zone",
        precision,
      };
    case "Json":
      return { dataType: native === "Json" ? "json" : "jsonb" };
    case "Bytes":
      return { dataType: "bytea" };
    default:
      throw new Error(`no PostgreSQL mapping for Prisma type ${field.type} (field ${field.name})`);
  }
}

interface DbColumn {
  table_schema: string;
  table_name: string;
  column_name: string;
  data_type: string;
  udt_name: string;
  is_nullable: "YES" | "NO";
  datetime_precision: number | null;
}

const MANAGED_SCHEMAS = ["write", "read"];

describe("the Prisma schema parser", () => {
  it("reads maps, schemas, optional fields, native types, Unsupported types and keys, and skips comments and relations", () => {
    const parsed = parsePrismaSchema(`
      datasource db {
        provider = "postgresql"
        schemas  = ["write", "read"] // trailing comment
      }
      /// a doc comment with { braces }
      model Thing {
        id      String   @id @db.Uuid // the key
        label   String?  @map("the_label")
        at      DateTime @map("at") @db.Timestamptz(6)
        tx      Unsupported("xid8") @default(dbgenerated("pg_current_xact_id()")) @map("tx_id")
        owner   Other    @relation(fields: [ownerId], references: [id])
        ownerId String   @map("owner_id") @db.Uuid
        // url    String   a commented-out field
        @@unique([label, ownerId])
        @@map("things")
        @@schema("write")
      }
      model Other {
        a Int
        b Int
        things Thing[]
        @@id([a, b])
        @@schema("read")
      }
    `);
    expect(parsed.schemas).toEqual(["write", "read"]);
    const [thing, other] = parsed.models;
    expect(thing).toMatchObject({
      name: "Thing",
      schema: "write",
      table: "things",
      primaryKey: ["id"],
      uniques: [["the_label", "owner_id"]],
    });
    expect(thing!.fields.map((f) => [f.name, f.column, f.optional, f.nativeType ?? f.unsupported ?? null])).toEqual([
      ["id", "id", false, "Uuid"],
      ["label", "the_label", true, null],
      ["at", "at", false, "Timestamptz"],
      ["tx", "tx_id", false, "xid8"],
      ["ownerId", "owner_id", false, "Uuid"],
    ]);
    expect(expectedColumnType(thing!.fields[2]!, parsed.enums)).toEqual({
      dataType: "timestamp with time zone",
      precision: 6,
    });
    expect(other).toMatchObject({ table: "Other", schema: "read", primaryKey: ["a", "b"] });
    expect(other!.fields.map((f) => f.name)).toEqual(["a", "b"]);
  });
});

describe("prisma/schema.prisma against the migrated database", () => {
  let db: TestDatabase;
  let prisma: PrismaSchema;
  let columns: DbColumn[];
  let keys: { schema: string; table: string; primary: boolean; columns: string[] }[];

  beforeAll(async () => {
    prisma = parsePrismaSchema(readFileSync(SCHEMA_FILE, "utf8"));
    db = await freshDatabase();
    columns = await db.sql<DbColumn>(
      `SELECT table_schema, table_name, column_name, data_type, udt_name, is_nullable, datetime_precision
         FROM information_schema.columns WHERE table_schema = ANY($1) ORDER BY table_schema, table_name, ordinal_position`,
      [MANAGED_SCHEMAS],
    );
    keys = await db.sql(
      `SELECT n.nspname AS schema, c.relname AS "table", i.indisprimary AS primary,
              array_agg(a.attname::text ORDER BY k.ord) AS columns
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE n.nspname = ANY($1) AND i.indisunique AND i.indpred IS NULL
        GROUP BY n.nspname, c.relname, i.indexrelid, i.indisprimary`,
      [MANAGED_SCHEMAS],
    );
  });
  afterAll(async () => db?.drop());

  const tableKey = (schema: string | undefined, table: string) => `${schema ?? "public"}.${table}`;

  it("declares every model's schema in the datasource and covers exactly the write and read schemas", () => {
    expect(prisma.models.length).toBeGreaterThan(0);
    for (const model of prisma.models) expect(prisma.schemas, `model ${model.name}`).toContain(model.schema);
    expect([...prisma.schemas].sort()).toEqual([...MANAGED_SCHEMAS].sort());
  });

  it("has a table for every model, and a model for every table in write and read", () => {
    const inPrisma = prisma.models.map((m) => tableKey(m.schema, m.table)).sort();
    const inDatabase = [...new Set(columns.map((c) => tableKey(c.table_schema, c.table_name)))].sort();
    expect(inPrisma).toEqual(inDatabase);
  });

  it("has the same columns, nullability and types as the database, model by model", () => {
    const problems: string[] = [];
    for (const model of prisma.models) {
      const where = tableKey(model.schema, model.table);
      const dbColumns = new Map(
        columns.filter((c) => tableKey(c.table_schema, c.table_name) === where).map((c) => [c.column_name, c]),
      );
      for (const field of model.fields) {
        const column = dbColumns.get(field.column);
        if (!column) {
          problems.push(`${model.name}.${field.name}: column ${where}.${field.column} does not exist`);
          continue;
        }
        dbColumns.delete(field.column);
        const nullable = column.is_nullable === "YES";
        if (nullable !== field.optional)
          problems.push(
            `${model.name}.${field.name}: Prisma says ${field.optional ? "optional" : "required"}, ${where}.${field.column} is ${nullable ? "NULL" : "NOT NULL"}`,
          );
        const expected = expectedColumnType(field, prisma.enums);
        if (column.data_type !== expected.dataType || (expected.udtName && column.udt_name !== expected.udtName)) {
          problems.push(
            `${model.name}.${field.name}: Prisma ${field.type}${field.nativeType ? ` @db.${field.nativeType}` : ""} means ${expected.dataType}, ${where}.${field.column} is ${column.data_type} (${column.udt_name})`,
          );
        }
        if (expected.precision !== undefined && column.datetime_precision !== expected.precision) {
          problems.push(
            `${model.name}.${field.name}: precision ${expected.precision} in Prisma, ${column.datetime_precision} in ${where}.${field.column}`,
          );
        }
      }
      for (const extra of dbColumns.keys()) problems.push(`${model.name}: ${where}.${extra} has no field in the model`);
    }
    expect(problems).toEqual([]);
  });

  it("has the same primary keys, and a unique index for every @unique and @@unique", () => {
    const problems: string[] = [];
    for (const model of prisma.models) {
      const where = tableKey(model.schema, model.table);
      const tableKeys = keys.filter((k) => tableKey(k.schema, k.table) === where);
      const primary = tableKeys.find((k) => k.primary)?.columns ?? [];
      if (primary.join(",") !== model.primaryKey.join(","))
        problems.push(`${model.name}: primary key (${model.primaryKey}) in Prisma, (${primary}) in ${where}`);
      for (const unique of model.uniques) {
        if (!tableKeys.some((k) => k.columns.join(",") === unique.join(",")))
          problems.push(`${model.name}: no unique index on ${where}(${unique})`);
      }
    }
    expect(problems).toEqual([]);
  });
});
