/** Writes docs/errors.md from the protocol's error table (`npm run docs:errors`). */
import { writeFileSync } from "node:fs";
import { renderErrorTable } from "../src/error-table.ts";

writeFileSync(new URL("../../../docs/errors.md", import.meta.url), renderErrorTable());
console.log("docs/errors.md written");
