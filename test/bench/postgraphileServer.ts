// The bench's peer for the catalog reads (test/bench/lib/peers.ts): PostGraphile v5 over the WRITE
// tables of the bench database, configured as a user of it would serve a catalog, without read
// tables: the Amber preset, the connection-filter plugin for the search, smart tags instead of
// changes to the tables, grafserv on node:http, production settings (no GraphiQL, no explain, no
// watch) and a pool as large as the shop server's (DB_POOL_SIZE, 20 unless set).
//
// Needs Node 22 (grafast's connections fail on Node 20): the bench starts it with the Node 22
// binary of lib/node22.ts. Environment: DATABASE_URL, PORT, DB_POOL_SIZE.
//
// The schema it serves, for the three reads the bench compares:
//   allProducts(first, orderBy: [NAME_ASC, PRIMARY_KEY_ASC], filter) { edges { node {
//     rowId sku name priceCents inventoryByProductId { available inStock } } } pageInfo }
//   productByRowId(rowId) { ... }
// The user-side choices:
// - an index on products(name, id) (made by the bench before this starts, lib/peers.ts): without
//   one PostGraphile offers no ordering or filtering by name, and its docs say to add the index;
// - products and inventory only (the other write tables are the shop's own business), no mutations;
// - inventory.available may be filtered although no index covers it (a smart tag: an index on a
//   stock count would cost every order and help no query);
// - filters may follow relations (connectionFilterRelations), for "in stock" on the inventory row;
// - Inventory.inStock is `available > 0`, computed from the selected column (no SQL function).
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import type { PgSelectSingleStep } from "postgraphile/@dataplan/pg";
import { lambda } from "postgraphile/grafast";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { extendSchema, gql, jsonPgSmartTags } from "postgraphile/utils";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

const databaseUrl = process.env.DATABASE_URL;
const port = Number(process.env.PORT ?? 0);
const poolSize = Number(process.env.DB_POOL_SIZE ?? 20);
if (!databaseUrl) throw new Error("DATABASE_URL is required");

const hidden = { tags: { behavior: "-*" } };
const SmartTags = jsonPgSmartTags({
  version: 1,
  config: {
    class: {
      "write.inventory": { attribute: { available: { tags: { behavior: "+filterBy" } } } },
      "write.orders": hidden,
      "write.order_lines": hidden,
      "write.events": hidden,
      "write.command_keys": hidden,
    },
  },
});

const InStock = extendSchema({
  typeDefs: gql`
    extend type Inventory {
      "Whether any unit can be ordered now."
      inStock: Boolean!
    }
  `,
  objects: {
    Inventory: {
      plans: {
        inStock($inventory: PgSelectSingleStep) {
          return lambda($inventory.get("available"), (available) => Number(available) > 0, true);
        },
      },
    },
  },
});

const preset: GraphileConfig.Preset = {
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
  plugins: [SmartTags, InStock],
  disablePlugins: ["PgMutationCreatePlugin", "PgMutationUpdateDeletePlugin"],
  pgServices: [makePgService({ connectionString: databaseUrl, schemas: ["write"], poolConfig: { max: poolSize } })],
  schema: { connectionFilterRelations: true },
  grafast: { explain: false },
  grafserv: { port, graphiql: false, graphqlOverGET: false, watch: false },
};

const pgl = postgraphile(preset);
// Listen only once the schema is built, so /healthz answering means the API can answer.
await pgl.getSchema();
const serv = pgl.createServ(grafserv);
const handle = serv.createHandler();
const server = createServer((req, res) =>
  handle(req, res, () => {
    const ok = req.method === "GET" && req.url === "/healthz";
    res.writeHead(ok ? 200 : 404, { "content-type": "text/plain" }).end(ok ? "ok" : "not found");
  }),
);
server.listen(port, "127.0.0.1");

const shutdown = () => {
  server.close();
  server.closeAllConnections();
  void serv
    .release()
    .then(() => pgl.release())
    .finally(() => process.exit(0));
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
