import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupFile, startTestApp, type TestApp } from "../support/app";

// CORS only for the origins of CORS_ORIGINS; by default the API answers no other origin's page.

const SHOP = "https://shop.example";
let t: Awaited<ReturnType<typeof setupFile>>;
let withCors: TestApp;
beforeAll(async () => {
  t = await setupFile({ trustedDocuments: "off" });
  withCors = await startTestApp(t.db, { corsOrigins: [SHOP], runProjector: false, trustedDocuments: "off" });
});
afterAll(async () => {
  await withCors?.stop();
  await t?.teardown();
});

const preflight = (url: string, origin: string) =>
  fetch(`${url}/graphql`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
  });
const query = (url: string, origin: string) =>
  fetch(`${url}/graphql`, {
    method: "POST",
    headers: { origin, "content-type": "application/json" },
    body: JSON.stringify({ query: "{ __typename }" }),
  });

describe("CORS_ORIGINS", () => {
  it("lets a listed origin's page call the API: preflight 204, Access-Control-Allow-Origin on the answer", async () => {
    const pre = await preflight(withCors.url, SHOP);
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    const res = await query(withCors.url, SHOP);
    expect(res.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(res.headers.get("vary")).toMatch(/origin/i);
    expect(await res.json()).toEqual({ data: { __typename: "Query" } });
  });

  it("gives any other origin nothing to read: its preflight is refused, its answers carry no CORS header", async () => {
    expect((await preflight(withCors.url, "https://evil.example")).status).toBe(403);
    expect((await query(withCors.url, "https://evil.example")).headers.get("access-control-allow-origin")).toBeNull();
    expect((await preflight(t.url, SHOP)).status).toBe(403); // by default: no origin at all
    expect((await query(t.url, SHOP)).headers.get("access-control-allow-origin")).toBeNull();
  });
});
