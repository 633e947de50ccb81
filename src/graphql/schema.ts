import "reflect-metadata";
import { resolve } from "node:path";
import { printSchema, lexicographicSortSchema, type GraphQLSchema } from "graphql";
import { validateOrReject, type ValidationError } from "class-validator";
import { ArgumentValidationError, buildSchema } from "type-graphql";
import { CatalogResolver } from "./resolvers/catalog.resolver";
import { OrdersResolver } from "./resolvers/orders.resolver";
import { ProjectionsResolver } from "./resolvers/projections.resolver";

export const SCHEMA_FILE = resolve(import.meta.dirname, "../../schema.graphql");

let built: Promise<GraphQLSchema> | undefined;

const VALIDATOR_OPTIONS = { skipMissingProperties: true, forbidUnknownValues: false };

/**
 * class-validator on every input object, as type-graphql's built-in validation does, but with
 * class-validator imported once: the built-in one runs `await import("class-validator")` for every
 * argument, which under tsx goes through the loader each time.
 */
async function validateArgument(value: unknown): Promise<void> {
  const objects = (Array.isArray(value) ? value : [value]).filter(
    (v): v is object => v !== null && typeof v === "object",
  );
  try {
    await Promise.all(objects.map((o) => validateOrReject(o, VALIDATOR_OPTIONS)));
  } catch (errors) {
    throw new ArgumentValidationError(errors as ValidationError[]);
  }
}

/**
 * Built once per process. Every decorator names its GraphQL type explicitly (`@Field(() => Int)`),
 * because tsx and vitest (esbuild) emit no decorator metadata. Inputs are validated with
 * class-validator before a resolver runs.
 */
export function getSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({
    resolvers: [CatalogResolver, OrdersResolver, ProjectionsResolver],
    validateFn: validateArgument,
    // Subscriptions get their events from the ChangeFeed (each declares its own `subscribe`);
    // type-graphql still insists on a PubSub, which is never used.
    pubSub: {
      publish: () => {
        throw new Error("publish through the ChangeFeed");
      },
      subscribe: () => {
        throw new Error("subscribe through the ChangeFeed");
      },
    },
  });
  return built;
}

/** The SDL committed as schema.graphql (sorted, so the file is stable). */
export async function schemaSdl(): Promise<string> {
  return `${printSchema(lexicographicSortSchema(await getSchema()))}\n`;
}
