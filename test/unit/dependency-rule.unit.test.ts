import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, posix, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/*
 * The CQRS split, enforced on the source: the query side never reaches into the write side,
 * only the projector writes read tables, and only the write side writes write tables.
 * A scan of the TypeScript AST (imports, string/template literals holding SQL, Prisma model
 * calls), so comments never count and every finding names its file and line.
 */

const ROOT = resolve(import.meta.dirname, "../..");

// The folders are the architecture: src/write/ (commands, the event log), src/projection/ (the
// projection engine and the projections), src/query/ and src/realtime/ (the query side).

/** The query side (queries and realtime delivery): they and everything they import stay clear of src/write/. */
const isQuerySide = (file: string) => file.startsWith("src/query/") || file.startsWith("src/realtime/");

/** The projection engine: the only code allowed to write schema "read". */
const mayWriteReadTables = (file: string) => file.startsWith("src/projection/");

/** The projections themselves: pure over their events, they never touch the write side. */
const isProjection = (file: string) => file.startsWith("src/projection/projections/");

/** The command side (the event log is part of it) and the database layer: the only code writing schema "write" with SQL. */
const mayWriteWriteTablesWithSql = (file: string) => ["src/write/", "src/db/"].some((dir) => file.startsWith(dir));

const WRITE_MODELS = new Set(["product", "inventory", "order", "orderLine", "commandKey"]);
const EVENT_MODEL = "event";
const READ_MODELS = new Set(["productView", "orderView", "projectionCheckpoint"]);
const PRISMA_WRITES = new Set([
  "create",
  "createMany",
  "createManyAndReturn",
  "update",
  "updateMany",
  "updateManyAndReturn",
  "upsert",
  "delete",
  "deleteMany",
]);

// ---------- the scanner ----------

interface ImportFact {
  specifier: string;
  /** Repo-relative path of the imported source file; undefined for packages. */
  target: string | undefined;
  line: number;
  kind: "import" | "export" | "dynamic import" | "require";
  typeOnly: boolean;
  /** Local names bound by an import declaration (value and type). */
  names: string[];
  /** Imported (exported-side) names, e.g. appendEvents. */
  imported: string[];
}

interface SqlWriteFact {
  line: number;
  statement: string;
  schema: "read" | "write" | "public" | "dynamic" | "unqualified";
}

interface PrismaWriteFact {
  line: number;
  model: string;
  method: string;
}

interface FileFacts {
  file: string;
  imports: ImportFact[];
  sqlWrites: SqlWriteFact[];
  prismaWrites: PrismaWriteFact[];
  /** Query/Subscription resolver members and what they reference. */
  queryResolverRefs: { line: number; member: string; ref: string }[];
  /** Tables of schema "write" named in string literals (read or written). */
  writeSchemaRefs: { line: number; table: string }[];
}

/** `INSERT INTO x`, `UPDATE x`, `DELETE FROM x`, `TRUNCATE x`, and the DDL a rebuild uses. */
const SQL_WRITE = new RegExp(
  String.raw`\b(insert\s+into|update|delete\s+from|truncate(?:\s+table)?|merge\s+into|drop\s+table(?:\s+if\s+exists)?|alter\s+table(?:\s+if\s+exists)?|create\s+(?:unlogged\s+)?table(?:\s+if\s+not\s+exists)?)\s+(?:only\s+)?` +
    // Quotes may be escaped in the source ("\"read\".\"x\""): \\?" matches both.
    String.raw`((?:\\?")?(?:read|write|public)(?:\\?")?\s*\.\s*(?:\\?")?\w+(?:\\?")?|\$\{[^}]*\}|(?:\\?")?\w+(?:\\?")?)`,
  "gi",
);

/** `"write"."events"`, `write.events`, with or without (escaped) quotes. */
const WRITE_SCHEMA_REF = /(?:\\?")?\bwrite(?:\\?")?\s*\.\s*(?:\\?")?([a-z_]\w*)/gi;

function schemaOf(target: string): SqlWriteFact["schema"] {
  if (target.startsWith("${")) return "dynamic";
  const m = /^(?:\\?")?(read|write|public)(?:\\?")?\s*\./i.exec(target);
  return m ? (m[1]!.toLowerCase() as SqlWriteFact["schema"]) : "unqualified";
}

function resolveImport(from: string, specifier: string, exists: (file: string) => boolean): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const base = posix.normalize(posix.join(posix.dirname(from), specifier));
  const candidates = [base, base.replace(/\.js$/, ".ts"), `${base}.ts`, `${base}.tsx`, `${base}/index.ts`];
  return candidates.find(exists) ?? (base.endsWith(".ts") ? base : `${base.replace(/\.js$/, "")}.ts`);
}

function scanSource(file: string, text: string, exists: (file: string) => boolean = () => false): FileFacts {
  const kind = file.endsWith(".tsx") ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const facts: FileFacts = {
    file,
    imports: [],
    sqlWrites: [],
    prismaWrites: [],
    queryResolverRefs: [],
    writeSchemaRefs: [],
  };
  const seenSql = new Set<string>();

  const addImport = (
    node: ts.Node,
    specifier: string,
    kind: ImportFact["kind"],
    typeOnly: boolean,
    names: string[] = [],
    imported: string[] = [],
  ) =>
    facts.imports.push({
      specifier,
      target: resolveImport(file, specifier, exists),
      line: lineOf(node.getStart(sf)),
      kind,
      typeOnly,
      names,
      imported,
    });

  const scanSql = (node: ts.Node) => {
    const raw = node.getText(sf);
    for (const m of raw.matchAll(WRITE_SCHEMA_REF)) {
      facts.writeSchemaRefs.push({ line: lineOf(node.getStart(sf) + m.index), table: m[1]! });
    }
    for (const m of raw.matchAll(SQL_WRITE)) {
      const line = lineOf(node.getStart(sf) + m.index);
      const statement = `${m[1]!.replace(/\s+/g, " ").toUpperCase()} ${m[2]}`;
      const key = `${line}:${statement}`;
      if (seenSql.has(key)) continue;
      seenSql.add(key);
      facts.sqlWrites.push({ line, statement, schema: schemaOf(m[2]!) });
    }
  };

  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const names: string[] = [];
      const imported: string[] = [];
      const bind = (local: string, exported: string) => {
        names.push(local);
        imported.push(exported);
      };
      if (clause?.name) bind(clause.name.text, "default");
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) bind(bindings.name.text, "*");
      if (bindings && ts.isNamedImports(bindings))
        for (const el of bindings.elements) bind(el.name.text, (el.propertyName ?? el.name).text);
      addImport(node, node.moduleSpecifier.text, "import", clause?.isTypeOnly ?? false, names, imported);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const imported =
        node.exportClause && ts.isNamedExports(node.exportClause)
          ? node.exportClause.elements.map((e) => (e.propertyName ?? e.name).text)
          : ["*"];
      addImport(node, node.moduleSpecifier.text, "export", node.isTypeOnly, [], imported);
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      addImport(node, node.moduleReference.expression.text, "import", node.isTypeOnly, [node.name.text], ["*"]);
    } else if (ts.isCallExpression(node)) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require";
      if (isDynamicImport || isRequire) {
        const arg = node.arguments[0];
        const kind = isDynamicImport ? "dynamic import" : "require";
        // A computed specifier cannot be checked: it is reported as "<computed>" and treated as a violation where imports are restricted.
        addImport(
          node,
          arg && (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg)) ? arg.text : "<computed>",
          kind,
          false,
          [],
          ["*"],
        );
      }
      const callee = node.expression;
      if (ts.isPropertyAccessExpression(callee) && PRISMA_WRITES.has(callee.name.text)) {
        const receiver = callee.expression;
        const model = ts.isPropertyAccessExpression(receiver)
          ? receiver.name.text
          : ts.isIdentifier(receiver)
            ? receiver.text
            : undefined;
        if (model && (WRITE_MODELS.has(model) || READ_MODELS.has(model) || model === EVENT_MODEL)) {
          facts.prismaWrites.push({ line: lineOf(callee.name.getStart(sf)), model, method: callee.name.text });
        }
      }
    }
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateExpression(node))
      scanSql(node);
    ts.forEachChild(node, visit);
  };
  visit(sf);

  // Query and subscription resolvers (methods decorated @Query / @Subscription / @FieldResolver,
  // and the functions inside those decorators' options): every identifier they use, and `.bus`.
  const collectRefs = (member: string, root: ts.Node) => {
    const walk = (n: ts.Node): void => {
      if (ts.isIdentifier(n) && !(ts.isPropertyAccessExpression(n.parent) && n.parent.name === n)) {
        facts.queryResolverRefs.push({ line: lineOf(n.getStart(sf)), member, ref: n.text });
      }
      if (ts.isPropertyAccessExpression(n) && n.name.text === "bus")
        facts.queryResolverRefs.push({ line: lineOf(n.name.getStart(sf)), member, ref: ".bus" });
      ts.forEachChild(n, walk);
    };
    walk(root);
  };
  const visitClasses = (node: ts.Node): void => {
    if (ts.isMethodDeclaration(node) || ts.isPropertyDeclaration(node)) {
      const decorators = ts.getDecorators(node) ?? [];
      const readSide = decorators.some(
        (d) =>
          ts.isCallExpression(d.expression) &&
          ts.isIdentifier(d.expression.expression) &&
          ["Query", "Subscription", "FieldResolver"].includes(d.expression.expression.text),
      );
      if (readSide) collectRefs(node.name.getText(sf), node);
    }
    ts.forEachChild(node, visitClasses);
  };
  visitClasses(sf);
  return facts;
}

// ---------- the project ----------

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : sourceFiles(path);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

const FILES = sourceFiles(join(ROOT, "src"))
  .map((f) => relative(ROOT, f).split("\\").join("/"))
  .sort();
const FILE_SET = new Set(FILES);
const exists = (file: string) => FILE_SET.has(file) || existsSync(join(ROOT, file));
const FACTS = new Map(FILES.map((file) => [file, scanSource(file, readFileSync(join(ROOT, file), "utf8"), exists)]));

/** Every path from `start` through src/ imports to a file that fails `bad`, as "a:1 → b:7 → c". */
function badImportChains(start: string, bad: (imp: ImportFact) => string | undefined): string[] {
  const found: string[] = [];
  const visited = new Set<string>([start]);
  const queue: { file: string; chain: string[] }[] = [{ file: start, chain: [] }];
  while (queue.length > 0) {
    const { file, chain } = queue.shift()!;
    for (const imp of FACTS.get(file)?.imports ?? []) {
      const here = [...chain, `${file}:${imp.line} (${imp.kind} "${imp.specifier}")`];
      const reason = bad(imp);
      if (reason) {
        found.push(`${here.join(" → ")}: ${reason}`);
        continue;
      }
      if (imp.target && FACTS.has(imp.target) && !visited.has(imp.target)) {
        visited.add(imp.target);
        queue.push({ file: imp.target, chain: here });
      }
    }
  }
  return found;
}

const fail = (violations: string[], rule: string) => {
  expect(violations, `${rule}\n  ${violations.join("\n  ")}`).toEqual([]);
};

describe("the dependency rule of the CQRS split", () => {
  it("scans the source tree (sanity: the files the rules are about exist)", () => {
    for (const file of [
      "src/realtime/changeFeed.ts",
      "src/realtime/subscriptionHub.ts",
      "src/projection/checkpoints.ts",
      "src/write/eventLog/eventLog.ts",
    ])
      expect(FILE_SET.has(file)).toBe(true);
    expect(FILES.some((f) => f.startsWith("src/query/"))).toBe(true);
    expect(FILES.some(isProjection)).toBe(true);
    // The scanner sees the SQL it must see: otherwise every rule below would pass vacuously.
    expect(FACTS.get("src/write/eventLog/eventLog.ts")!.sqlWrites.some((w) => w.schema === "write")).toBe(true);
    expect([...FACTS.values()].some((f) => f.sqlWrites.some((w) => w.schema === "read"))).toBe(true);
    expect(FACTS.get("src/write/eventLog/eventLog.ts")!.writeSchemaRefs.map((r) => r.table)).toContain("events");
  });

  it("(a) the query side (src/query/, src/realtime/) imports nothing from src/write/, directly or through other files", () => {
    const violations = FILES.filter(isQuerySide).flatMap((file) =>
      badImportChains(file, (imp) => {
        if (imp.specifier === "<computed>") return "a computed dynamic import cannot be checked";
        if (imp.target?.startsWith("src/write/")) return "the query side must not depend on the write side";
        return undefined;
      }),
    );
    fail([...new Set(violations)], "The query side reaches into the write side:");
  });

  it("(a) query and subscription resolvers in src/graphql/ use read repositories only, never the command bus or src/write/", () => {
    const violations: string[] = [];
    for (const facts of [...FACTS.values()].filter((f) => f.file.startsWith("src/graphql/"))) {
      const forbidden = new Map<string, string>();
      for (const imp of facts.imports) {
        if (imp.target?.startsWith("src/write/")) for (const name of imp.names) forbidden.set(name, imp.target);
      }
      for (const ref of facts.queryResolverRefs) {
        if (ref.ref === ".bus")
          violations.push(
            `${facts.file}:${ref.line}: ${ref.member} (a query/subscription resolver) uses the command bus`,
          );
        else if (forbidden.has(ref.ref))
          violations.push(
            `${facts.file}:${ref.line}: ${ref.member} (a query/subscription resolver) uses ${ref.ref} from ${forbidden.get(ref.ref)}`,
          );
      }
    }
    fail(violations, "A query or subscription resolver uses the write side:");
  });

  it("only the command side appends to the event log", () => {
    const violations = [...FACTS.values()].flatMap((f) =>
      f.file.startsWith("src/write/")
        ? []
        : f.imports
            .filter(
              (imp) => imp.target?.startsWith("src/write/eventLog/") && imp.imported.some((n) => /^append/i.test(n)),
            )
            .map(
              (imp) =>
                `${f.file}:${imp.line}: imports ${imp.imported.filter((n) => /^append/i.test(n)).join(", ")} from ${imp.target}`,
            ),
    );
    fail(violations, "Only src/write/ may append events:");
  });

  it('(b) only the projection engine, src/projection/, writes "read" tables', () => {
    const violations = [...FACTS.values()].flatMap((f) => {
      if (mayWriteReadTables(f.file)) return [];
      const sql = f.sqlWrites
        .filter((w) => w.schema === "read" || w.schema === "dynamic")
        .map(
          (w) =>
            `${f.file}:${w.line}: ${w.statement}${w.schema === "dynamic" ? " (a computed table name counts as a read table: qualify it with its schema)" : ""}`,
        );
      const prisma = f.prismaWrites
        .filter((w) => READ_MODELS.has(w.model))
        .map((w) => `${f.file}:${w.line}: prisma ${w.model}.${w.method}()`);
      return [...sql, ...prisma];
    });
    fail(violations, 'Only the projector writes "read" tables:');
  });

  it('(c) only src/write/ and src/db/ write "write" tables with SQL, and only src/write/ through Prisma models', () => {
    const violations = [...FACTS.values()].flatMap((f) => {
      const sql = mayWriteWriteTablesWithSql(f.file)
        ? []
        : f.sqlWrites.filter((w) => w.schema === "write").map((w) => `${f.file}:${w.line}: ${w.statement}`);
      const models = f.file.startsWith("src/write/")
        ? []
        : f.prismaWrites
            .filter((w) => WRITE_MODELS.has(w.model))
            .map((w) => `${f.file}:${w.line}: prisma ${w.model}.${w.method}()`);
      const events = f.file.startsWith("src/write/eventLog/")
        ? []
        : f.prismaWrites
            .filter((w) => w.model === EVENT_MODEL)
            .map((w) => `${f.file}:${w.line}: prisma event.${w.method}() (append through src/write/eventLog)`);
      return [...sql, ...models, ...events];
    });
    fail(violations, 'Only the command side writes "write" tables:');
  });

  it("(d) the projections (src/projection/projections/) never read or write the write side: no write table, no src/write/ import", () => {
    const violations = [...FACTS.values()]
      .filter((f) => isProjection(f.file))
      .flatMap((f) => [
        ...f.writeSchemaRefs.map((r) => `${f.file}:${r.line}: names write.${r.table}`),
        ...f.imports
          .filter((imp) => imp.target?.startsWith("src/write/"))
          .map((imp) => `${f.file}:${imp.line}: imports ${imp.target}`),
      ]);
    fail(violations, "A projection reaches into the write side (it gets everything from its events):");
  });

  it("(e) the command side (src/write/) imports nothing of the read side (src/projection/, src/query/, src/realtime/)", () => {
    const readSide = ["src/projection/", "src/query/", "src/realtime/"];
    const violations = [...FACTS.values()]
      .filter((f) => f.file.startsWith("src/write/"))
      .flatMap((f) =>
        f.imports
          .filter((imp) => readSide.some((dir) => imp.target?.startsWith(dir)))
          .map((imp) => `${f.file}:${imp.line}: imports ${imp.target}`),
      );
    fail(violations, "The command side depends on the read side:");
  });
});

describe("the storefront's boundary", () => {
  it("(f) the storefront (src/storefront/, browser code) imports only its own files and packages, never the server's", () => {
    const pages = [...FACTS.values()].filter((f) => f.file.startsWith("src/storefront/"));
    expect(pages.map((f) => f.file)).toContain("src/storefront/src/App.tsx");
    const violations = pages.flatMap((f) =>
      f.imports
        .filter((imp) => imp.target !== undefined && !imp.target.startsWith("src/storefront/"))
        .map((imp) => `${f.file}:${imp.line}: imports ${imp.target}`),
    );
    fail(violations, "The storefront reaches into the server:");
  });
});

describe("the dependency scanner", () => {
  const scan = (text: string, file = "src/query/fixtures/fixture.ts") => scanSource(file, text);

  it("finds static, re-exported, type-only, dynamic and require imports with their lines", () => {
    const facts = scan(
      [
        `import { placeOrder } from "../../write/orders/commands/placeOrder";`,
        `import type { OrderEvent } from "../../write/orders/orders.events";`,
        `export { createProduct } from "../../write/catalog/commands/createProduct";`,
        `export * from "../../write/command";`,
        `const lazy = () => import("../../write/commandBus");`,
        `const old = require("../../write/commandBus.js");`,
        `import pg from "pg";`,
      ].join("\n"),
    );
    expect(facts.imports.map((i) => [i.line, i.kind, i.typeOnly, i.target])).toEqual([
      [1, "import", false, "src/write/orders/commands/placeOrder.ts"],
      [2, "import", true, "src/write/orders/orders.events.ts"],
      [3, "export", false, "src/write/catalog/commands/createProduct.ts"],
      [4, "export", false, "src/write/command.ts"],
      [5, "dynamic import", false, "src/write/commandBus.ts"],
      [6, "require", false, "src/write/commandBus.ts"],
      [7, "import", false, undefined],
    ]);
  });

  it("finds SQL writes by schema in strings and templates, on the right line, and ignores comments and reads", () => {
    const facts = scan(
      [
        `// UPDATE "read"."products" in a comment is not SQL`,
        `const a = 'INSERT INTO "read"."products" (id) VALUES ($1)';`,
        "const b = `SELECT 1;",
        "  update read.orders set status = $1`;",
        "const c = `DELETE FROM ${tables.orders} WHERE id = $1`;",
        `const d = "TRUNCATE TABLE \\"write\\".\\"events\\"";`,
        `const e = 'SELECT * FROM "read"."products"';`,
        `const f = 'INSERT INTO "public"."_prisma_migrations" (id) VALUES ($1)';`,
      ].join("\n"),
    );
    expect(facts.sqlWrites.map((w) => [w.line, w.schema])).toEqual([
      [2, "read"],
      [4, "read"],
      [5, "dynamic"],
      [6, "write"],
      [8, "public"],
    ]);
  });

  it("finds Prisma model writes and leaves other .delete/.update calls alone", () => {
    const facts = scan(
      [
        `await tx.order.updateMany({ where: {} });`,
        `await prisma.productView.upsert({});`,
        `set.delete(channel);`,
        `hash.update("x");`,
      ].join("\n"),
    );
    expect(facts.prismaWrites).toEqual([
      { line: 1, model: "order", method: "updateMany" },
      { line: 2, model: "productView", method: "upsert" },
    ]);
  });

  it("sees what a query resolver uses, but not a mutation resolver", () => {
    const facts = scan(
      [
        `import { placeOrder } from "../../write/orders/commands/placeOrder";`,
        `class R {`,
        `  @Query(() => Int) sneaky(@Ctx() ctx: C) { return ctx.services.bus.dispatch(placeOrder, {}); }`,
        `  @Mutation(() => Int) fine(@Ctx() ctx: C) { return ctx.services.bus.dispatch(placeOrder, {}); }`,
        `}`,
      ].join("\n"),
      "src/graphql/resolvers/fixture.resolver.ts",
    );
    const refs = facts.queryResolverRefs.filter((r) => r.ref === ".bus" || r.ref === "placeOrder");
    expect(refs).toEqual([
      { line: 3, member: "sneaky", ref: ".bus" },
      { line: 3, member: "sneaky", ref: "placeOrder" },
    ]);
  });
});
