// Loads a demo catalog into whichever database the config selects: DATABASE_URL, or the
// embedded Postgres (PGlite) under DATA_DIR (default .data/pglite).
//   npm run seed
//   DATA_DIR=/tmp/shop npm run seed
//
// Products go in the way a client's would: createProduct commands through the CommandBus, as an
// admin, never by writing tables, so every product has its ProductCreated event and the read
// side is built from the log like everything else. Idempotent: a sku that already exists is
// skipped (the command answers CONFLICT). The projector then catches up before the script
// ends, so the catalog shows the products as soon as the server is up.
//
// The embedded database is a folder owned by ONE process (two on one PGlite folder corrupt it).
// When a server holds it, the seed sends the same commands to that server's API instead
// (serverApi.ts: http://127.0.0.1:$PORT/graphql, as an admin). A Postgres server
// (DATABASE_URL) is seeded directly, whether the API runs or not.
import { randomUUID } from "node:crypto";
import { commandSettings, ConfigError, loadConfig, type Config } from "../src/config";
import { migrateDatabases, openDatabases, writeDatabase } from "../src/db/open";
import { EmbeddedDatabaseInUse } from "../src/db/pglite";
import { logSource } from "../src/projection/logSource";
import { createLogger } from "../src/logger";
import { Projector } from "../src/projection/projector";
import { allProjections } from "../src/projection/projections";
import { CatalogQueries } from "../src/query/catalog.queries";
import { ProjectionQueries } from "../src/query/projections.queries";
import type { Actor } from "../src/shared/auth";
import { systemClock, uuid } from "../src/shared/clock";
import { AppError } from "../src/shared/errors";
import { createProduct, type CreateProduct } from "../src/write/catalog/commands/createProduct";
import { CommandBus } from "../src/write/commandBus";
import { ScriptFailure, serverApi } from "./serverApi";
import {
  CreateProductDocument,
  ProductDocument,
  ProductsDocument,
  type ProductFieldsFragment,
} from "../src/storefront/generated/graphql";

const SEED_SUB = "seed";
const SEED_ACTOR: Actor = { kind: "user", id: SEED_SUB, role: "admin" };

export const DEMO_CATALOG: CreateProduct[] = [
  {
    sku: "KIT-ESP-001",
    name: "Stovetop Espresso Maker, 6 cup",
    description: "Cast aluminium moka pot, makes six 50 ml cups.",
    priceCents: 3499,
    initialStock: 40,
  },
  {
    sku: "KIT-GRN-002",
    name: "Burr Coffee Grinder",
    description: "Conical steel burrs, 18 grind settings.",
    priceCents: 8900,
    initialStock: 15,
  },
  {
    sku: "KIT-KNF-003",
    name: "Chef's Knife 20 cm",
    description: "Forged stainless steel, full tang.",
    priceCents: 6450,
    initialStock: 25,
  },
  {
    sku: "KIT-BRD-004",
    name: "Walnut Cutting Board",
    description: "End-grain walnut, 40 × 30 cm.",
    priceCents: 5200,
    initialStock: 12,
  },
  {
    sku: "KIT-MUG-005",
    name: "Stoneware Mug, 350 ml",
    description: "Reactive glaze; dishwasher safe.",
    priceCents: 1450,
    initialStock: 120,
  },
  {
    sku: "HOM-LMP-006",
    name: "Brass Desk Lamp",
    description: "Adjustable arm, E27 socket, warm-white LED bulb included.",
    priceCents: 7900,
    initialStock: 8,
  },
  {
    sku: "HOM-THR-007",
    name: "Merino Wool Throw",
    description: "130 × 170 cm, charcoal.",
    priceCents: 11900,
    initialStock: 10,
  },
  {
    sku: "HOM-CDL-008",
    name: "Soy Candle, Cedar & Fig",
    description: "Cotton wick, about 45 hours.",
    priceCents: 2400,
    initialStock: 60,
  },
  {
    sku: "OUT-BTL-009",
    name: "Insulated Bottle, 750 ml",
    description: "Keeps drinks cold for 24 h, hot for 12 h.",
    priceCents: 2990,
    initialStock: 75,
  },
  {
    sku: "OUT-PCK-010",
    name: "Daypack 22 L",
    description: "Recycled nylon, padded laptop sleeve.",
    priceCents: 8400,
    initialStock: 18,
  },
  {
    sku: "STN-NTB-011",
    name: "Dot-Grid Notebook A5",
    description: "160 pages, 100 g/m² paper, lay-flat binding.",
    priceCents: 1800,
    initialStock: 200,
  },
  {
    sku: "STN-PEN-012",
    name: "Fountain Pen, Fine Nib",
    description: "Steel nib, converter and two cartridges included.",
    priceCents: 4200,
    initialStock: 3,
  },
];

const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`;

interface Seeded {
  created: string[];
  skipped: string[];
  /** The demo products as the catalog shows them now. */
  rows: Array<Pick<ProductFieldsFragment, "sku" | "name" | "priceCents" | "available"> | null>;
  listed: number;
}

function report(sku: string, name: string, outcome: "created" | "skipped"): void {
  if (outcome === "created") console.log(`  created  ${sku}  ${name}`);
  else console.log(`  skipped  ${sku}  (a product with this sku exists)`);
}

function summary({ created, skipped, rows, listed }: Seeded): void {
  console.log(
    `\n${created.length} created, ${skipped.length} skipped (already there); the catalog lists ${listed} products.`,
  );
  for (const row of rows) {
    if (row)
      console.log(
        `  ${row.sku}  ${euros(row.priceCents).padStart(8)}  ${String(row.available).padStart(4)} available  ${row.name}`,
      );
  }
}

async function seedDatabase(config: Config): Promise<Seeded> {
  const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel);
  const dbs = await openDatabases(config);
  const { read: readDb } = dbs;
  const db = writeDatabase(dbs);
  try {
    console.log(
      db.kind === "embedded"
        ? `seeding the embedded Postgres (PGlite) in ${db.location}`
        : `seeding Postgres at ${db.location}`,
    );
    for (const { applied } of await migrateDatabases(dbs))
      if (applied.length > 0) console.log(`applied migrations: ${applied.join(", ")}`);

    const bus = new CommandBus(db, systemClock, uuid, commandSettings(config));
    const correlationId = `seed-${randomUUID()}`;
    const created: string[] = [];
    const skipped: string[] = [];
    for (const product of DEMO_CATALOG) {
      try {
        await bus.dispatch(createProduct, product, SEED_ACTOR, { correlationId });
        created.push(product.sku);
        report(product.sku, product.name, "created");
      } catch (error) {
        // CONFLICT: the sku exists (also when a concurrent seed won the race: the bus maps the unique violation).
        if (!(error instanceof AppError && error.code === "CONFLICT")) throw error;
        skipped.push(product.sku);
        report(product.sku, product.name, "skipped");
      }
    }

    // Fill the read tables now rather than when the server next starts.
    await new Projector(readDb, allProjections, {
      source: logSource(db),
      batchSize: config.projectorBatchSize,
      pollMs: config.projectorPollMs,
      instanceId: config.instanceId,
      logger,
    }).catchUp();
    const behind = (await new ProjectionQueries(readDb.prisma).statuses()).filter(
      (s) => s.status !== "RUNNING" || s.lagEvents > 0,
    );
    for (const s of behind)
      console.warn(
        `warning: projection ${s.name} is ${s.status}, ${s.lagEvents} events behind${s.lastError ? `: ${s.lastError}` : ""}`,
      );

    const catalog = new CatalogQueries(readDb);
    const rows = await Promise.all(DEMO_CATALOG.map((p) => catalog.bySku(p.sku)));
    const page = await catalog.list({}, 0, null);
    return { created, skipped, rows, listed: await page.count() };
  } finally {
    await dbs.close();
  }
}

/** The server that holds the embedded database, seeded through its API with the same commands. */
async function seedThroughServer(config: Config, inUse: EmbeddedDatabaseInUse): Promise<Seeded> {
  const api = serverApi(config, inUse, SEED_SUB);
  console.log(`the embedded database is in use by process ${inUse.pid}: seeding through its API at ${api.url}`);
  const created: string[] = [];
  const skipped: string[] = [];
  for (const product of DEMO_CATALOG) {
    const { data, errors } = await api.request(CreateProductDocument, { input: product });
    if (errors?.[0]?.extensions?.code === "CONFLICT") {
      skipped.push(product.sku);
      report(product.sku, product.name, "skipped");
    } else {
      if (!data) throw api.failure(`createProduct ${product.sku} failed`, errors);
      created.push(product.sku);
      report(product.sku, product.name, "created");
    }
  }
  // Each createProduct answered once its product was in the read tables (read-your-writes).
  const rows = await Promise.all(
    DEMO_CATALOG.map(async ({ sku }) => (await api.data(ProductDocument, { sku }, `product(sku: ${sku})`)).product),
  );
  const { products } = await api.data(ProductsDocument, { first: 0 }, "products");
  return { created, skipped, rows, listed: products.totalCount };
}

async function seed(config: Config): Promise<void> {
  try {
    summary(await seedDatabase(config));
  } catch (error) {
    if (!(error instanceof EmbeddedDatabaseInUse)) throw error;
    summary(await seedThroughServer(config, error));
  }
}

try {
  await seed(loadConfig());
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`configuration error: ${error.message}`);
    process.exit(2);
  }
  console.error("seed failed:", error instanceof ScriptFailure ? error.message : error);
  process.exit(1);
}
