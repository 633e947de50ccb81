import "reflect-metadata";
import { resolve } from "node:path";
import { printSchema, lexicographicSortSchema, type GraphQLSchema } from "graphql";
import { buildSchema } from "type-graphql";
import { CatalogResolver } from "./resolvers/catalog.resolver";
import { OrdersResolver } from "./resolvers/orders.resolver";
import { ProjectionsResolver } from "./resolvers/projections.resolver";

export const SCHEMA_FILE = resolve(import.meta.dirname, "../../schema.graphql");

let built: Promise<GraphQLSchema> | undefined;

/**
 * Built once per process. Every decorator names its GraphQL type explicitly (`@Field(() => Int)`),
 * because tsx and vitest (esbuild) emit no decorator metadata. Inputs are validated with
 * class-validator before a resolver runs.
 */
export function getSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({
    resolvers: [CatalogResolver, OrdersResolver, ProjectionsResolver],
    validate: { forbidUnknownValues: false },
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
