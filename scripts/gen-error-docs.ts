/** Writes docs/errors.md from the protocol's error table. */
import { writeFileSync } from "node:fs";
import { renderErrorTable } from "../signaling/protocol/src/error-table.ts";

writeFileSync(new URL("../docs/errors.md", import.meta.url), renderErrorTable());
console.log("docs/errors.md written");
