// Initialises the embedded database's template once per installation (`npm install` runs this):
// a new embedded database is then a copy of it instead of PGlite's initdb. See src/db/pgliteTemplate.ts.
// Without it everything still works (a new database runs initdb), so a failure here only warns:
// it never fails the install.
import { prepareEmbeddedTemplate } from "../src/db/pgliteTemplate";

try {
  await prepareEmbeddedTemplate();
} catch (error) {
  console.warn(
    `warning: the embedded database's template was not made (${String((error as Error).message ?? error)}); a new embedded database will run initdb instead`,
  );
}
