/**
 * A statement: SQL text with $1.. placeholders and its values. Built with the `sql` tag, so a
 * value can never become SQL text: `sql`SELECT * FROM t WHERE id = ${id}`` sends `id` as $1.
 * `Row` is the shape of one result row (a type only, for the caller's benefit).
 */
export interface Statement<Row = Record<string, unknown>> {
  readonly text: string;
  readonly values: readonly unknown[];
  /** Phantom: never set; carries the row type. */
  readonly row?: Row;
}

/** A schema-qualified name, quoted: `sql.identifier("read", "products")` is `"read"."products"`. */
export class Identifier {
  readonly text: string;
  readonly parts: readonly string[];
  constructor(...parts: string[]) {
    this.parts = parts;
    this.text = parts.map((part) => `"${part.replace(/"/g, '""')}"`).join(".");
  }

  /** The unqualified name. */
  get name(): string {
    return this.parts.at(-1)!;
  }
}

/**
 * A piece of a statement, to splice into another (see sql.fragment). It keeps its template and
 * values, and is numbered only where it lands, so a statement of nested fragments is put together
 * in one pass. It is a statement of its own too.
 */
export interface Fragment extends Statement<never> {
  readonly fragment: true;
  readonly strings: readonly string[];
  readonly parts: readonly unknown[];
}

/**
 * Tagged template for statements. An interpolated value becomes a parameter; an Identifier is
 * quoted into the text; a fragment (`sql.fragment`) is spliced in with its own parameters
 * numbered after the ones before it. Keep the text fixed for a statement (pass lists as arrays
 * and unnest them in SQL): the text names a prepared statement, reused on every connection.
 * Where such a short list picks a table's rows by key on a hot path, join through "write"."each"
 * (or "read"."each") instead of unnest() or = ANY(…), so that Postgres keeps one plan for it
 * (see their migrations); a long list (a rebuild's batch) is better planned for its count.
 */
export function sql<Row = Record<string, unknown>>(
  strings: TemplateStringsArray,
  ...values: unknown[]
): Statement<Row> {
  return build(strings, values);
}

/**
 * The text of each call site whose values are all parameters, built once: the same string every
 * time, so naming its prepared statement (a map keyed by text) need not hash a new string.
 */
const texts = new WeakMap<TemplateStringsArray, string>();

const isParameter = (value: unknown) => !(value instanceof Identifier || isFragment(value));

function build<Row>(strings: TemplateStringsArray, values: unknown[]): Statement<Row> {
  if (values.every(isParameter)) {
    let text = texts.get(strings);
    if (text === undefined) texts.set(strings, (text = strings.reduce((built, part, i) => `${built}$${i}${part}`)));
    return { text, values };
  }
  const params: unknown[] = [];
  return { text: assemble(strings, values, params), values: params };
}

/** The text of a template and its values, the parameters pushed onto `params` as they come. */
function assemble(strings: readonly string[], values: readonly unknown[], params: unknown[]): string {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value instanceof Identifier) text += value.text;
    else if (isFragment(value)) text += assemble(value.strings, value.parts, params);
    else text += `$${params.push(value)}`;
    text += strings[i + 1]!;
  }
  return text;
}

class TemplateFragment implements Fragment {
  readonly fragment = true;
  private own: Statement | undefined;
  constructor(
    readonly strings: readonly string[],
    readonly parts: readonly unknown[],
  ) {}

  /** Its text as a statement of its own, numbered from $1. */
  get text(): string {
    return this.statement().text;
  }

  get values(): readonly unknown[] {
    return this.statement().values;
  }

  private statement(): Statement {
    if (this.own === undefined) {
      const values: unknown[] = [];
      this.own = { text: assemble(this.strings, this.parts, values), values };
    }
    return this.own;
  }
}

const fragment = (strings: readonly string[], parts: readonly unknown[]): Fragment =>
  new TemplateFragment(strings, parts);

function isFragment(value: unknown): value is Fragment {
  return typeof value === "object" && value !== null && (value as Partial<Fragment>).fragment === true;
}

sql.identifier = (...parts: string[]) => new Identifier(...parts);
/** A piece of a statement, to interpolate into another `sql` template. */
sql.fragment = (strings: TemplateStringsArray, ...values: unknown[]): Fragment => fragment(strings, values);
/** The fragments one after another with `separator` (SQL text) between them: `sql.join(conditions, " AND ")`. */
sql.join = (fragments: readonly Fragment[], separator: string): Fragment =>
  fragment(fragments.length ? ["", ...fragments.slice(1).map(() => separator), ""] : [""], fragments);
/** `WHERE` and the conditions joined with AND, or nothing when there are none. */
sql.where = (conditions: readonly Fragment[]): Fragment =>
  conditions.length ? fragment(["WHERE ", ""], [sql.join(conditions, " AND ")]) : fragment([""], []);
/**
 * SQL text the program wrote itself, never input (a column list made once from configuration),
 * as a fragment without parameters.
 */
sql.trusted = (text: string): Fragment => fragment([text], []);
