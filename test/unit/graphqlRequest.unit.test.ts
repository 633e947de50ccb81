import { describe, expect, it } from "vitest";
import { GraphQLError, Kind } from "graphql";
import {
  MAX_QUERY_TOKENS,
  operationTypeOf,
  PARSED_DOCUMENTS_MAX_CHARS,
  parseQuery,
} from "../../src/http/graphqlRequest";

const asText = (query: string) => ({ query, trusted: undefined });

describe("parseQuery: a document parsed once per text", () => {
  it("gives the same document object for the same text, and another for another text", () => {
    const a = parseQuery("query A { products(first: 1) { totalCount } }");
    expect(a.definitions[0]!.kind).toBe(Kind.OPERATION_DEFINITION);
    expect(parseQuery("query A { products(first: 1) { totalCount } }")).toBe(a);
    expect(parseQuery("query B { products(first: 1) { totalCount } }")).not.toBe(a);
  });

  it("throws the syntax error, every time the text comes", () => {
    for (let i = 0; i < 2; i++) expect(() => parseQuery("query {")).toThrow(GraphQLError);
    expect(() => parseQuery("query {")).toThrow(/Syntax Error/);
  });

  it("refuses a document over the token cap", () => {
    const long = `{ ${"a ".repeat(MAX_QUERY_TOKENS)}}`;
    expect(() => parseQuery(long)).toThrow(/tokens/);
  });

  it("keeps at most PARSED_DOCUMENTS_MAX_CHARS of text: past it, it starts again", () => {
    const first = parseQuery("query Kept { products(first: 2) { totalCount } }");
    const filler = (n: number) => `query Filler${n} { products(first: 3) { totalCount } } # ${"x".repeat(100_000)}`;
    for (let n = 0; n * 100_000 <= PARSED_DOCUMENTS_MAX_CHARS; n++) parseQuery(filler(n));
    const again = parseQuery("query Kept { products(first: 2) { totalCount } }");
    expect(again).not.toBe(first); // parsed anew: the cache was emptied when it filled
    expect(again).toEqual(first);
    // A text larger than the whole cache is parsed, and not kept.
    const huge = `query Huge { products(first: 1) { totalCount } } # ${"y".repeat(PARSED_DOCUMENTS_MAX_CHARS)}`;
    expect(parseQuery(huge)).not.toBe(parseQuery(huge));
    expect(parseQuery("query Kept { products(first: 2) { totalCount } }")).toBe(again);
  });
});

describe("operationTypeOf a document sent as text", () => {
  it("reads the type of the named operation, or of the only one", () => {
    expect(operationTypeOf(asText("mutation M { a } query Q { b }"), "M")).toBe("mutation");
    expect(operationTypeOf(asText("mutation M { a } query Q { b }"), "Q")).toBe("query");
    expect(operationTypeOf(asText("{ products { totalCount } }"), undefined)).toBe("query");
  });

  it("is undefined for a text that does not parse, or an operation it does not name", () => {
    expect(operationTypeOf(asText("mutation {"), undefined)).toBeUndefined();
    expect(operationTypeOf(asText("mutation M { a } query Q { b }"), undefined)).toBeUndefined();
    expect(operationTypeOf(asText("query Q { b }"), "Other")).toBeUndefined();
  });
});
