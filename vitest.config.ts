import { defineConfig } from "vitest/config";

export default defineConfig({
  // graphql has no "exports" map: Vite resolves `import "graphql"` in project code to its ESM
  // build (index.mjs, "module" field) while Node loads the CJS build (index.js) for the
  // dependencies (type-graphql, graphql-ws), so the schema fails graphql's instanceof checks
  // ("Cannot use GraphQLSchema from another module or realm", e.g. graphql-ws validate).
  // tsx/Node resolve both to index.js; make the tests do the same.
  resolve: { alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }] },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    setupFiles: ["reflect-metadata"],
    // Each file gets its own database; two workers match the two cores here.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { NODE_ENV: "test" },
  },
});
