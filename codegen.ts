import type { CodegenConfig } from "@graphql-codegen/cli";

// Typed documents for the operations the tests (and a storefront) send. The output is
// committed; `npm run check` fails when it is stale against schema.graphql.
const config: CodegenConfig = {
  schema: "schema.graphql",
  documents: ["test/documents/**/*.graphql"],
  generates: {
    "test/generated/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: { useTypeImports: true, enumsAsTypes: true, scalars: { DateTimeISO: "string" } },
    },
  },
};

export default config;
