import type { CodegenConfig } from "@graphql-codegen/cli";

// Typed documents for the operations the storefront (src/storefront) and the tests send: one
// set, shared. The output is committed; `npm run check` fails when it is stale against
// schema.graphql.
const config: CodegenConfig = {
  schema: "schema.graphql",
  documents: ["src/storefront/documents/**/*.graphql"],
  generates: {
    "src/storefront/generated/": {
      preset: "client",
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: "sha256" } },
      config: { useTypeImports: true, enumsAsTypes: true, scalars: { DateTimeISO: "string" } },
    },
  },
};

export default config;
