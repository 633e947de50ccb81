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

/** A statement that can also be spliced into another (see sql.fragment). */
export type Fragment = Statement<never> & { readonly fragment: true };

/**
 * Tagged template for statements. An interpolated value becomes a parameter; an Identifier is
 * quoted into the text; a fragment (`sql.fragment`) is spliced in with its own parameters
 * renumbered. Keep the text fixed for a statement (pass lists as arrays and unnest them in SQL):
 * the text names a prepared statement, reused on every connection.
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
  let text = strings[0]!;
  const params: unknown[] = [];
  values.forEach((value, i) => {
    if (value instanceof Identifier) text += value.text;
    else if (isFragment(value))
      text += value.text.replace(/\$(\d+)/g, (_, n: string) => `$${params.push(value.values[Number(n) - 1])}`);
    else text += `$${params.push(value)}`;
    text += strings[i + 1]!;
  });
  return { text, values: params };
}

function isFragment(value: unknown): value is Fragment {
  return typeof value === "object" && value !== null && (value as Partial<Fragment>).fragment === true;
}

sql.identifier = (...parts: string[]) => new Identifier(...parts);
/** A piece of a statement, to interpolate into another `sql` template. */
sql.fragment = (strings: TemplateStringsArray, ...values: unknown[]): Fragment => ({
  ...build(strings, values),
  fragment: true,
});
