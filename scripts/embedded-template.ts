// Initialises the embedded database's template once per installation (`npm install` runs this):
// a new embedded database is then a copy of it instead of PGlite's initdb. See src/db/pgliteTemplate.ts.
import { prepareEmbeddedTemplate } from "../src/db/pgliteTemplate";

await prepareEmbeddedTemplate();
