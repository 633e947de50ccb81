import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHmac, randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import fc from "fast-check";
import { print, type DocumentNode } from "graphql";
import jwt from "jsonwebtoken";
import { pino } from "pino";
import { setupFile, startTestApp, type TestApp } from "../support/app";
import { documentOf, TEST_JWT_SECRET, token } from "../support/client";
import { AUDIENCE, IdentityProvider, ISSUER, newKey, sign } from "../support/identityProvider";
import {
  CancelOrderDocument,
  CreateProductDocument,
  OrderDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  RestockProductDocument,
  ShipOrderDocument,
} from "../../src/storefront/generated/graphql";

/*
 * Generated malformed and hostile requests (fast-check). Every one must get a clear error: a
 * JSON body with an `errors` array whose entries carry extensions.code, never a 5xx or
 * INTERNAL_SERVER_ERROR, and nothing may be written. A request that some mistake would let
 * through is otherwise valid (a real product, a real order, a well-formed order) so that
 * "nothing written" would catch it. FUZZ_SEED=<n> replays a run.
 */

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
/** Internal errors the server logged (it logs every error it turns into INTERNAL_SERVER_ERROR). */
const serverErrors: string[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    serverErrors.push(chunk.toString());
    done();
  },
});

let t: Awaited<ReturnType<typeof setupFile>>;
let productId: string;
let victimOrderId: string;
const VICTIM = "fuzz-victim";
const sent: Record<string, number> = {};

beforeAll(async () => {
  // Documents of its own (trusted documents off); the ways of naming a trusted one are fuzzed too.
  t = await setupFile({ trustedDocuments: "off" }, { logger: pino({ level: "error" }, logSink) });
  const created = await t.admin.ok(CreateProductDocument, {
    input: { sku: "FUZZ-1", name: "Fuzz kettle", priceCents: 1999, initialStock: 100 },
  });
  productId = created.createProduct.product!.id;
  const placed = await t
    .customer(VICTIM)
    .ok(PlaceOrderDocument, { input: { idempotencyKey: "victim-1", lines: [{ productId, quantity: 1 }] } });
  victimOrderId = placed.placeOrder.order!.id;
});
afterAll(async () => {
  console.log(
    `bad-input fuzz: ${Object.values(sent).reduce((a, b) => a + b, 0)} hostile requests (${Object.entries(sent)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")})`,
  );
  await t?.teardown();
});

const WRITE_TABLES = ["products", "inventory", "orders", "order_lines", "command_keys", "events"];
async function writeModel() {
  const [counts] = await t.db
    .sql(`SELECT ${WRITE_TABLES.map((w) => `(SELECT count(*) FROM "write"."${w}") AS "${w}"`).join(", ")},
    (SELECT sum(on_hand)::int FROM "write".inventory) AS on_hand, (SELECT sum(reserved)::int FROM "write".inventory) AS reserved,
    (SELECT string_agg(status, ',' ORDER BY id) FROM "write".orders) AS statuses`);
  return counts;
}

/** One request as it goes on the wire. */
interface Hostile {
  label: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  method?: string;
  path?: string;
  /** The code the answer must carry (otherwise any contract or GraphQL code but INTERNAL_SERVER_ERROR). */
  code?: string;
  /** For queries whose safe answer is null (someone else's order): this data field may be null instead of an error. */
  nullOk?: string;
  /** Another instance than the file's own (an identity provider's, trusted documents only). */
  baseUrl?: () => string;
}

const bearer = (value: string) => ({ authorization: `Bearer ${value}` });
const asCustomer = (sub = "fuzz-customer") => bearer(token("customer", sub));
const asAdmin = () => bearer(token("admin", "fuzz-admin"));
const gql = (document: DocumentNode | string, variables: unknown) =>
  JSON.stringify({ query: typeof document === "string" ? document : print(document), variables });

/** Sends it and returns what is wrong with the answer (undefined when it is a clear refusal). */
async function judge(h: Hostile): Promise<string | undefined> {
  sent[h.label] = (sent[h.label] ?? 0) + 1;
  const res = await fetch(`${h.baseUrl?.() ?? t.url}${h.path ?? "/graphql"}`, {
    method: h.method ?? "POST",
    headers: { "content-type": "application/json", ...h.headers },
    body: h.body,
  });
  const text = await res.text();
  const where = `${h.label}: HTTP ${res.status} ${text.slice(0, 300)}`;
  if (res.status >= 500) return `server error, ${where}`;
  let parsed: { data?: Record<string, unknown> | null; errors?: { extensions?: { code?: unknown } }[] };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return `not a JSON answer, ${where}`;
  }
  if (!parsed.errors?.length) {
    if (h.nullOk && parsed.data && parsed.data[h.nullOk] === null) return undefined;
    return `accepted, ${where}`;
  }
  for (const e of parsed.errors) {
    const code = e.extensions?.code;
    if (typeof code !== "string") return `an error without extensions.code, ${where}`;
    if (code === "INTERNAL_SERVER_ERROR") return `INTERNAL_SERVER_ERROR, ${where}`;
  }
  if (h.code && parsed.errors[0]!.extensions!.code !== h.code) return `expected ${h.code}, ${where}`;
  return undefined;
}

/** Runs `numRuns` generated requests and checks that none wrote anything. */
async function fuzz(arbitrary: fc.Arbitrary<Hostile>, numRuns: number): Promise<void> {
  const before = await writeModel();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (h) => {
      const problem = await judge(h);
      if (problem) throw new Error(problem);
    }),
    { numRuns, seed: SEED, endOnFailure: true },
  );
  expect(await writeModel()).toEqual(before);
}

// ---------- what "valid" looks like, so that one wrong part makes a request invalid ----------

type FieldType = "Int" | "String" | "ID" | "list" | "object";
interface Field {
  path: (string | number)[];
  type: FieldType;
  /** For Int/String: the range the server accepts (values outside it are invalid too). */
  min?: number;
  max?: number;
  nullable?: boolean;
}
interface Operation {
  name: string;
  document: DocumentNode;
  headers: () => Record<string, string>;
  variables: () => Record<string, unknown>;
  fields: Field[];
}

const OPERATIONS: Operation[] = [
  {
    name: "placeOrder",
    document: PlaceOrderDocument,
    headers: () => asCustomer(),
    variables: () => ({ input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] } }),
    fields: [
      { path: ["input"], type: "object" },
      { path: ["input", "idempotencyKey"], type: "String", min: 1, max: 200 },
      { path: ["input", "lines"], type: "list" },
      { path: ["input", "lines", 0], type: "object" },
      { path: ["input", "lines", 0, "productId"], type: "ID" },
      { path: ["input", "lines", 0, "quantity"], type: "Int", min: 1, max: 10_000 },
    ],
  },
  {
    name: "createProduct",
    document: CreateProductDocument,
    headers: asAdmin,
    variables: () => ({
      input: { sku: `FUZZ-${randomUUID()}`, name: "Fuzzed", description: "d", priceCents: 100, initialStock: 5 },
    }),
    fields: [
      { path: ["input"], type: "object" },
      { path: ["input", "sku"], type: "String", min: 1, max: 64 },
      { path: ["input", "name"], type: "String", min: 1, max: 200 },
      { path: ["input", "description"], type: "String", max: 5000, nullable: true },
      { path: ["input", "priceCents"], type: "Int", min: 0, max: 100_000_000 },
      { path: ["input", "initialStock"], type: "Int", min: 0, max: 1_000_000_000 },
    ],
  },
  {
    name: "restockProduct",
    document: RestockProductDocument,
    headers: asAdmin,
    variables: () => ({ input: { productId, quantity: 1 } }),
    fields: [
      { path: ["input"], type: "object" },
      { path: ["input", "productId"], type: "ID" },
      { path: ["input", "quantity"], type: "Int", min: 1, max: 1_000_000_000 },
    ],
  },
  ...[
    { name: "cancelOrder", document: CancelOrderDocument, headers: () => asCustomer(VICTIM) },
    { name: "payOrder", document: PayOrderDocument, headers: asAdmin },
    { name: "shipOrder", document: ShipOrderDocument, headers: asAdmin },
  ].map((o) => ({
    ...o,
    // payOrder/shipOrder/cancelOrder of the victim's order would be valid: only a broken orderId is sent.
    variables: () => ({ input: { orderId: victimOrderId } }),
    fields: [
      { path: ["input"], type: "object" as const },
      { path: ["input", "orderId"], type: "ID" as const },
    ],
  })),
];

function setAt(target: Record<string, unknown>, path: (string | number)[], value: unknown, remove = false): void {
  let node = target as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (remove) delete node[last];
  else node[last] = value;
}

const anyJson = fc.jsonValue({ maxDepth: 3 });
const nonIntegerNumber = fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x));
const outsideInt32 = fc.oneof(
  fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -(2 ** 31) - 1 }),
);
/** Postgres cannot store NUL in text: it must come back as bad input, not as a database failure. */
const withNul = fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })).map(([a, b]) => `${a}\u0000${b}`);
const notAUuid = fc
  .string({ maxLength: 60 })
  .filter((s) => !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s));

/** A value the field's type (or the server's range for it) does not accept. */
function wrongValue(field: Field): fc.Arbitrary<unknown> {
  switch (field.type) {
    case "Int": {
      const outOfRange = [
        ...(field.min !== undefined ? [fc.integer({ min: -(2 ** 31), max: field.min - 1 })] : []),
        ...(field.max !== undefined && field.max < 2 ** 31 - 1
          ? [fc.integer({ min: field.max + 1, max: 2 ** 31 - 1 })]
          : []),
      ];
      return fc.oneof(
        fc.string(),
        fc.boolean(),
        nonIntegerNumber,
        outsideInt32,
        fc.array(fc.integer(), { minLength: 1 }),
        fc.object(),
        ...outOfRange,
      );
    }
    case "String": {
      const tooLong =
        field.max !== undefined
          ? [fc.integer({ min: field.max + 1, max: field.max + 2000 }).map((n) => "x".repeat(n))]
          : [];
      const tooShort = field.min ? [fc.constantFrom("")] : [];
      return fc.oneof(
        fc.integer(),
        nonIntegerNumber,
        fc.boolean(),
        fc.array(fc.string(), { minLength: 1 }),
        fc.object(),
        withNul,
        ...tooLong,
        ...tooShort,
      );
    }
    case "ID":
      return fc.oneof(
        fc.boolean(),
        nonIntegerNumber,
        fc.integer(),
        notAUuid,
        fc.array(fc.uuid(), { minLength: 2 }),
        fc.object(),
      );
    case "list":
      // Not an object: GraphQL would coerce a single object into a list of one (a valid order).
      return fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant([]));
    case "object":
      return fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.array(fc.integer()));
  }
}

const operation = fc.constantFrom(...OPERATIONS);
const unknownName = fc
  .stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,15}$/)
  .filter(
    (n) =>
      ![
        "input",
        "idempotencyKey",
        "lines",
        "productId",
        "quantity",
        "sku",
        "name",
        "description",
        "priceCents",
        "initialStock",
        "orderId",
      ].includes(n),
  );

const wrongTypes: fc.Arbitrary<Hostile> = operation.chain((op) =>
  fc.constantFrom(...op.fields).chain((field) =>
    wrongValue(field).map((value) => {
      const variables = op.variables();
      setAt(variables, field.path, value);
      return { label: "wrong types", body: gql(op.document, variables), headers: op.headers() };
    }),
  ),
);

// Text arguments of queries, with a NUL in them.
const nulInQueries: fc.Arbitrary<Hostile> = fc.tuple(withNul, fc.boolean()).map(([text, search]) => ({
  label: "wrong types",
  body: search
    ? gql("query ($s: String) { products(filter: { search: $s }) { totalCount } }", { s: text })
    : gql("query ($s: String) { product(sku: $s) { id } }", { s: text }),
  code: "BAD_USER_INPUT",
}));

const nullWhereNonNull: fc.Arbitrary<Hostile> = operation.chain((op) =>
  fc.tuple(fc.constantFrom(...op.fields.filter((f) => !f.nullable)), fc.boolean()).map(([field, omit]) => {
    const variables = op.variables();
    setAt(variables, field.path, null, omit);
    return { label: "null where non-null", body: gql(op.document, variables), headers: op.headers() };
  }),
);

const unknownFields: fc.Arbitrary<Hostile> = fc.oneof(
  // In an input object.
  fc.tuple(operation, unknownName, anyJson).map(([op, name, value]) => {
    const variables = op.variables() as { input: Record<string, unknown> & { lines?: Record<string, unknown>[] } };
    (variables.input.lines?.[0] ?? variables.input)[name] = value;
    return { label: "unknown fields", body: gql(op.document, variables), headers: op.headers() };
  }),
  // In the selection set, or as an argument.
  fc.tuple(unknownName, fc.boolean()).map(([name, asArgument]) => ({
    label: "unknown fields",
    body: asArgument
      ? gql(
          `mutation ($input: PlaceOrderInput!) { placeOrder(input: $input, ${name}: 1) { position } }`,
          OPERATIONS[0]!.variables(),
        )
      : gql(
          `mutation ($input: PlaceOrderInput!) { placeOrder(input: $input) { position order { id ${name} } } }`,
          OPERATIONS[0]!.variables(),
        ),
    headers: asCustomer(),
  })),
);

const hugeLists: fc.Arbitrary<Hostile> = fc.oneof(
  fc.oneof(fc.integer({ min: 101, max: 10_000 }), fc.constant(10_000)).map((n) => ({
    label: "huge lists",
    body: gql(PlaceOrderDocument, {
      input: { idempotencyKey: randomUUID(), lines: Array.from({ length: n }, () => ({ productId, quantity: 1 })) },
    }),
    headers: asCustomer(),
    code: "BAD_USER_INPUT",
  })),
  // Aliases that multiply the cost of a page past the complexity limit.
  fc.integer({ min: 5, max: 300 }).map((n) => ({
    label: "huge lists",
    body: gql(
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: products(first: 100) { edges { node { id sku name description } } }`).join(" ")} }`,
      {},
    ),
  })),
  fc.integer({ min: 2_001, max: 20_000 }).map((n) => ({
    label: "huge lists",
    body: gql(`{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(" ")} }`, {}),
  })),
);

const deepQueries: fc.Arbitrary<Hostile> = fc.oneof(
  fc.integer({ min: 9, max: 3_000 }).map((d) => ({
    label: "deep queries",
    body: gql(`{ products { edges { node { ${"deeper { ".repeat(d)} id ${"} ".repeat(d)} } } } }`, {}),
  })),
  fc.integer({ min: 1, max: 20_000 }).map((d) => ({
    label: "deep queries",
    body: gql(`{ ${"... on Query { ".repeat(d)} nope ${"} ".repeat(d)} }`, {}),
  })),
  fc
    .integer({ min: 100, max: 50_000 })
    .map((d) => ({ label: "deep queries", body: gql("{".repeat(d) + "}".repeat(d), {}) })),
  fc.integer({ min: 2, max: 20_000 }).map((d) => ({
    label: "deep queries",
    body: `{"query":${JSON.stringify(print(PlaceOrderDocument))},"variables":{"input":{"idempotencyKey":"deep","lines":${"[".repeat(d)}${"]".repeat(d)}}}}`,
    headers: asCustomer(),
  })),
  fc.constant(null).map(() => ({
    label: "deep queries",
    body: gql("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }", {}),
  })),
);

const oversizedBodies: fc.Arbitrary<Hostile> = fc
  .tuple(fc.integer({ min: 1_000_001, max: 4_000_000 }), fc.boolean())
  .map(([size, inQuery]) => {
    const padding = " ".repeat(size);
    return {
      label: "oversized bodies",
      body: inQuery
        ? gql(print(PlaceOrderDocument) + padding, OPERATIONS[0]!.variables())
        : gql(PlaceOrderDocument, { ...OPERATIONS[0]!.variables(), padding }),
      headers: asCustomer(),
      code: "BAD_REQUEST",
    };
  });

const INVALID_UTF8 = [
  [0xff],
  [0xc3, 0x28],
  [0xe2, 0x82],
  [0xf0, 0x28, 0x8c, 0xbc],
  [0xed, 0xa0, 0x80],
  [0xc0, 0xaf],
  [0x80],
  [0xe9],
];
const invalidUtf8: fc.Arbitrary<Hostile> = fc.tuple(fc.constantFrom(...INVALID_UTF8), fc.nat()).map(([bytes, at]) => {
  const valid = Buffer.from(gql(PlaceOrderDocument, OPERATIONS[0]!.variables()));
  const cut = at % (valid.length + 1);
  return {
    label: "invalid UTF-8",
    body: Buffer.concat([valid.subarray(0, cut), Buffer.from(bytes), valid.subarray(cut)]),
    headers: asCustomer(),
    code: "BAD_REQUEST",
  };
});

const randomBodies: fc.Arbitrary<Hostile> = fc.oneof(
  fc
    .uint8Array({ maxLength: 4096 })
    .map((bytes) => ({ label: "random bytes", body: Buffer.from(bytes), headers: asCustomer() })),
  fc
    .string({ unit: "binary", maxLength: 500 })
    .map((text) => ({ label: "random bytes", body: text, headers: asAdmin() })),
  anyJson.map((value) => ({ label: "random bytes", body: JSON.stringify(value), headers: asCustomer() })),
  fc
    .string({ maxLength: 200 })
    .map((query) => ({ label: "random bytes", body: JSON.stringify({ query }), headers: asAdmin() })),
);

// A valid order body: only the forged credentials stand between it and a written order.
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const printable = fc.stringMatching(/^[\x21-\x7e]{1,300}$/);
const forgedJwts: fc.Arbitrary<Hostile> = fc
  .oneof(
    printable.map((s) => `Bearer ${s}`),
    fc
      .constantFrom("customer", "admin")
      .map(
        (role) =>
          `Bearer ${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "fuzz-customer", role, exp: now() + 3600 })}.`,
      ),
    fc
      .tuple(
        fc.string({ minLength: 1, maxLength: 64 }).filter((s) => s !== TEST_JWT_SECRET),
        fc.constantFrom("customer", "admin"),
      )
      .map(
        ([secret, role]) =>
          `Bearer ${jwt.sign({ sub: "fuzz-customer", role }, secret, { algorithm: "HS256", expiresIn: 3600 })}`,
      ),
    fc
      .integer({ min: 1, max: 10_000_000 })
      .map(
        (ago) =>
          `Bearer ${jwt.sign({ sub: "fuzz-customer", role: "customer", exp: now() - ago }, TEST_JWT_SECRET, { algorithm: "HS256" })}`,
      ),
    fc
      .integer({ min: 60, max: 10_000_000 })
      .map(
        (later) =>
          `Bearer ${jwt.sign({ sub: "fuzz-customer", role: "customer", nbf: now() + later }, TEST_JWT_SECRET, { algorithm: "HS256", expiresIn: 3600 * 24 * 365 })}`,
      ),
    fc
      .constantFrom("HS384", "HS512")
      .map(
        (algorithm) =>
          `Bearer ${jwt.sign({ sub: "fuzz-customer", role: "customer" }, TEST_JWT_SECRET, { algorithm: algorithm as jwt.Algorithm, expiresIn: 3600 })}`,
      ),
    fc
      .tuple(
        fc.constantFrom<unknown>("superuser", "", "Customer", 1, null, ["customer"]),
        fc.constantFrom<unknown>("fuzz-customer", "", 42, null, "x".repeat(201)),
      )
      .filter(([role, sub]) => !(role === "customer" && sub === "fuzz-customer"))
      .map(
        ([role, sub]) => `Bearer ${jwt.sign({ sub, role }, TEST_JWT_SECRET, { algorithm: "HS256", expiresIn: 3600 })}`,
      ),
    // A customer's real token with the payload rewritten to admin: the signature no longer matches.
    fc.constant(null).map(() => {
      const [header, , signature] = token("customer", "fuzz-customer").split(".");
      return `Bearer ${header}.${b64({ sub: "fuzz-customer", role: "admin", exp: now() + 3600 })}.${signature}`;
    }),
    fc.constantFrom(
      "Bearer",
      "Bearer ",
      "Basic Zm9vOmJhcg==",
      "Token abc",
      "bearer",
      `Bearer ${token("customer", "fuzz-customer")} extra`,
    ),
  )
  .map((authorization) => ({
    label: "forged or expired JWTs",
    body: gql(PlaceOrderDocument, OPERATIONS[0]!.variables()),
    headers: { authorization },
    code: "UNAUTHENTICATED",
  }));

const otherCustomersIds: fc.Arbitrary<Hostile> = fc
  .tuple(
    fc.stringMatching(/^[a-z0-9-]{1,40}$/).filter((s) => s !== VICTIM),
    fc.boolean(),
  )
  .chain(([mallory, upper]) => {
    const orderId = upper ? victimOrderId.toUpperCase() : victimOrderId;
    return fc.constantFrom<Hostile>(
      {
        label: "other customers' ids",
        body: gql(CancelOrderDocument, { input: { orderId } }),
        headers: asCustomer(mallory),
        code: "NOT_FOUND",
      },
      {
        label: "other customers' ids",
        body: gql(PayOrderDocument, { input: { orderId } }),
        headers: asCustomer(mallory),
        code: "FORBIDDEN",
      },
      {
        label: "other customers' ids",
        body: gql(ShipOrderDocument, { input: { orderId } }),
        headers: asCustomer(mallory),
        code: "FORBIDDEN",
      },
      {
        label: "other customers' ids",
        body: gql(OrderDocument, { id: orderId }),
        headers: asCustomer(mallory),
        nullOk: "order",
      },
      {
        label: "other customers' ids",
        body: gql("{ orders { totalCount } }", {}),
        headers: asCustomer(mallory),
        code: "FORBIDDEN",
      },
      {
        label: "other customers' ids",
        body: gql(`subscription { orderUpdated(orderId: "${orderId}") { id } }`, {}),
        headers: asCustomer(mallory),
      },
    );
  });

const wrongHttp: fc.Arbitrary<Hostile> = fc.oneof(
  fc.constantFrom("PUT", "DELETE", "PATCH").map((method) => ({
    label: "wrong HTTP usage",
    method,
    body: gql(PlaceOrderDocument, OPERATIONS[0]!.variables()),
    headers: asCustomer(),
  })),
  fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data").map((type) => ({
    label: "wrong HTTP usage",
    body: gql(PlaceOrderDocument, OPERATIONS[0]!.variables()),
    headers: { ...asCustomer(), "content-type": type },
  })),
  fc.integer({ min: 1, max: 20 }).map((n) => ({
    label: "wrong HTTP usage",
    body: JSON.stringify(
      Array.from({ length: n }, () => JSON.parse(gql(PlaceOrderDocument, OPERATIONS[0]!.variables())) as unknown),
    ),
    headers: asCustomer(),
  })),
  fc.constant(null).map(() => ({
    label: "wrong HTTP usage",
    method: "GET",
    path: `/graphql?${new URLSearchParams({ query: print(PlaceOrderDocument), variables: JSON.stringify(OPERATIONS[0]!.variables()) })}`,
    headers: { ...asCustomer(), "apollo-require-preflight": "true" },
  })),
);

// ---------- an identity provider's tokens, tampered with; documents named in every wrong way ----------

let idp: IdentityProvider;
let oidc: TestApp; // AUTH_JWKS_URL alone (no shared secret)
let trustedOnly: TestApp; // TRUSTED_DOCUMENTS=only
/** Tokens made ahead (signing is asynchronous, arbitraries are not). */
const made = { valid: "", stranger: "", wrongIssuer: "", wrongAudience: "", expired: [] as string[], publicPem: "" };
beforeAll(async () => {
  idp = await IdentityProvider.start();
  const [key, attacker] = await Promise.all([newKey("fuzz-rsa", "RS256"), newKey("fuzz-rsa", "RS256")]);
  idp.published = [key];
  oidc = await startTestApp(t.db, { jwtSecret: undefined, authJwks: idp.options(), runProjector: false });
  trustedOnly = await startTestApp(t.db, { trustedDocuments: "only", runProjector: false });
  const claims = { sub: "fuzz-customer", role: "customer" };
  made.valid = await sign(key, claims);
  made.stranger = await sign(attacker, { ...claims, role: "admin" });
  made.wrongIssuer = await sign(key, claims, { issuer: "https://evil.test" });
  made.wrongAudience = await sign(key, claims, { audience: "another-api" });
  made.expired = await Promise.all(["-1s", "-1h", "-400d"].map((ago) => sign(key, claims, { expiresIn: ago })));
  made.publicPem = key.publicPem;
});
afterAll(async () => {
  await oidc?.stop();
  await trustedOnly?.stop();
  await idp?.stop();
});

/** A valid provider token with one part replaced: the header, the claims or the signature. */
const tamperedProviderToken: fc.Arbitrary<string> = fc.oneof(
  fc.nat().map((i) => {
    const [h, c, sig] = made.valid.split(".") as [string, string, string];
    // Not the last character: its low bits are padding (an RS256 signature is 2048 bits in 342
    // base64url characters), so changing them there leaves the same signature.
    const at = i % (sig.length - 1);
    const flipped = sig[at] === "A" ? "B" : "A";
    return `${h}.${c}.${sig.slice(0, at)}${flipped}${sig.slice(at + 1)}`;
  }),
  fc
    .record({ role: fc.constantFrom<unknown>("admin", "customer", ["admin"], null), sub: fc.string({ maxLength: 40 }) })
    .map((claims) => {
      const [h, , sig] = made.valid.split(".");
      return `${h}.${b64({ ...claims, iss: ISSUER, aud: AUDIENCE, exp: now() + 600 })}.${sig}`;
    }),
  fc
    .record({
      alg: fc.constantFrom("none", "HS256", "HS512", "RS512", "PS256", "ES256", "ES384", "EdDSA", "", "rs256"),
      kid: fc.oneof(fc.constant("fuzz-rsa"), fc.string({ maxLength: 40 }), fc.constant(undefined)),
    })
    .map((header) => {
      const [, c, sig] = made.valid.split(".");
      return `${b64(header)}.${c}.${sig}`;
    }),
  fc.constantFrom("HS256", "HS384", "HS512").map((alg) => {
    const unsigned = `${b64({ alg, kid: "fuzz-rsa" })}.${made.valid.split(".")[1]}`;
    const hmac = createHmac(`sha${alg.slice(2)}`, made.publicPem)
      .update(unsigned)
      .digest("base64url");
    return `${unsigned}.${hmac}`; // HMAC keyed with the provider's public key
  }),
  fc.constantFrom("stranger", "wrongIssuer", "wrongAudience").map((k) => made[k as "stranger"]),
  fc.nat({ max: 2 }).map((i) => made.expired[i]!),
);

const providerTokens: fc.Arbitrary<Hostile> = fc
  .tuple(tamperedProviderToken, fc.constantFrom(OPERATIONS[0]!, ...OPERATIONS))
  .map(([jwt, op]) => ({
    label: "provider tokens",
    baseUrl: () => oidc.url,
    body: JSON.stringify({ ...documentOf(op.document), variables: op.variables() }),
    headers: bearer(jwt),
    code: "UNAUTHENTICATED",
  }));

const KNOWN_ID = (documentOf(PlaceOrderDocument) as { documentId: string }).documentId;
const documentNames: fc.Arbitrary<Hostile> = fc
  .tuple(
    fc.oneof(
      fc.record({
        documentId: fc.oneof(
          printable,
          fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
        ),
      }),
      fc.record({ documentId: fc.constantFrom<unknown>(42, null, true, [], {}, "", KNOWN_ID.toUpperCase()) }),
      fc.record({
        extensions: fc.record({
          persistedQuery: fc.oneof(
            fc.record({
              version: fc.constantFrom<unknown>(1, 2, "1"),
              sha256Hash: fc.oneof(printable, fc.stringMatching(/^[0-9a-f]{64}$/)),
            }),
            fc.constantFrom<unknown>("x", 1, [], { sha256Hash: 5 }),
          ),
        }),
      }),
      fc.record({ documentId: fc.constant(KNOWN_ID), query: printable }),
      fc.record({ query: fc.constantFrom(print(PlaceOrderDocument), "{ products { totalCount } }", "mutation { x }") }),
    ),
    fc.boolean(),
  )
  .map(([named, overWhat]) => ({
    label: "ways of naming a document",
    baseUrl: () => trustedOnly.url,
    body: JSON.stringify({
      ...named,
      variables: { input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity: 1 }] } },
    }),
    headers: overWhat ? asCustomer() : {},
  }));

describe("hostile and malformed requests", () => {
  it.each<[string, () => fc.Arbitrary<Hostile>, number]>([
    ["wrong types in variables", () => wrongTypes, 200],
    ["NUL characters in the text arguments of queries", () => nulInQueries, 20],
    ["null where a value is required", () => nullWhereNonNull, 100],
    ["unknown fields and arguments", () => unknownFields, 100],
    ["huge lists (up to 10,000 order lines) and alias bombs", () => hugeLists, 25],
    ["deep queries, deep variables and fragment cycles", () => deepQueries, 60],
    ["bodies over 1 MB", () => oversizedBodies, 12],
    ["invalid UTF-8", () => invalidUtf8, 100],
    ["random bytes, text and JSON", () => randomBodies, 200],
    ["forged, tampered and expired JWTs", () => forgedJwts, 150],
    ["another customer's order ids", () => otherCustomersIds, 100],
    ["wrong HTTP methods, content types and batches", () => wrongHttp, 60],
    [
      "an identity provider's tokens, tampered with (signature, claims, alg, kid, key, expiry)",
      () => providerTokens,
      120,
    ],
    [
      "documents named in every wrong way (documentId, persisted-query extensions) where only trusted ones run",
      () => documentNames,
      150,
    ],
  ])("answers %s with a clear error and writes nothing", { timeout: 60_000 }, async (_what, arbitrary, runs) => {
    await fuzz(arbitrary(), runs);
  });

  it("was sent at least 1,000 requests, logged no internal error, and is still up", async () => {
    expect(Object.values(sent).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1000);
    expect(serverErrors).toEqual([]);
    const health = await fetch(`${t.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    // And it still serves a good request.
    const ok = await t
      .customer("fuzz-after")
      .request(PlaceOrderDocument, { input: { idempotencyKey: "after", lines: [{ productId, quantity: 1 }] } });
    expect(ok.errors).toBeUndefined();
  });
});
