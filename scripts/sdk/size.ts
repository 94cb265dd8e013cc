/**
 * The browser cost of the SDK: everything `@switchboard/client` exports, with the protocol and
 * zod, bundled by esbuild for browsers, minified, then gzipped; the heaviest modules by their
 * minified bytes in the bundle.
 *
 *   npm run sdk:size      (builds dist/ first; measures the built files, as they are packed)
 *
 * The SDK tests measure the same bundle in a scratch project that installed the packed tarballs,
 * and fail above {@link CLIENT_BUNDLE_BUDGET_GZIP_BYTES}.
 */
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { REPO_ROOT, SdkToolError, buildSdk, cleanSdk, kib } from "./pack.ts";

/**
 * Budget of the SDK in a browser bundle: the client, the protocol and zod, minified and gzipped.
 * Measured 33.6 KiB at 0.1.0 (zod is four fifths of it); importing zod as `{ z }` instead of a
 * namespace pulls in every locale of zod (99 KiB).
 */
export const CLIENT_BUNDLE_BUDGET_GZIP_BYTES = 40 * 1024;

/** One module (or group of modules) of a bundle. */
export interface BundlePart {
  /** Package and path, e.g. `zod/v4/core` or `@switchboard/client/dist/client.js`. */
  readonly name: string;
  /** Its minified bytes in the bundle. */
  readonly bytes: number;
}

/** Sizes of one bundle. */
export interface BundleSize {
  readonly minifiedBytes: number;
  readonly gzipBytes: number;
  /** Heaviest first. */
  readonly parts: readonly BundlePart[];
  /** Every input file that made it into the bundle, as esbuild names it. */
  readonly inputs: readonly string[];
}

/** The entry that pulls in everything the client exports, as an app that uses all of it would. */
export const WHOLE_CLIENT_ENTRY = 'export * from "@switchboard/client";\n';

/**
 * Bundles `contents` (an ES module) for browsers as an app's bundler would: resolved from
 * `resolveDir` (whose node_modules hold the SDK), minified, tree-shaken; `alias` redirects package
 * names (the CLI points them at the workspace's dist/).
 */
export async function measureBundle(contents: string, resolveDir: string, alias: Record<string, string> = {}): Promise<BundleSize> {
  const result = await build({
    stdin: { contents, resolveDir, loader: "js", sourcefile: "entry.js" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
    alias,
  });
  const output = result.outputFiles[0];
  if (!output) throw new SdkToolError("SDK_ERR_BUILD_FAILED", "esbuild produced no output");
  const meta = Object.values(result.metafile.outputs)[0];
  const groups = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(meta?.inputs ?? {})) {
    if (bytesInOutput === 0) continue;
    const name = partName(input);
    groups.set(name, (groups.get(name) ?? 0) + bytesInOutput);
  }
  return {
    minifiedBytes: output.contents.byteLength,
    gzipBytes: gzipSync(output.contents, { level: 9 }).byteLength,
    parts: [...groups].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes),
    inputs: Object.keys(meta?.inputs ?? {}),
  };
}

/** `…/node_modules/zod/v4/core/schemas.js` → `zod/v4/core`; workspace files keep their package-relative path. */
function partName(input: string): string {
  const i = input.lastIndexOf("node_modules/");
  const path = i >= 0 ? input.slice(i + "node_modules/".length) : input.replace(/^.*?signaling\/(protocol|client)\//, "@switchboard/$1/");
  const segments = path.split("/");
  const pkgLength = segments[0]?.startsWith("@") ? 2 : 1;
  return segments.slice(0, pkgLength + 2).join("/");
}

/** The report the tests and the CLI print: total min and min+gzip, then the heaviest parts with their share. */
export function formatSizeReport(title: string, size: BundleSize, top = 8): string {
  const lines = [`${title}: ${kib(size.minifiedBytes)} minified, ${kib(size.gzipBytes)} minified + gzip (budget ${kib(CLIENT_BUNDLE_BUDGET_GZIP_BYTES)})`];
  for (const part of size.parts.slice(0, top)) {
    lines.push(`  ${kib(part.bytes).padStart(10)}  ${((100 * part.bytes) / size.minifiedBytes).toFixed(1).padStart(5)} %  ${part.name}`);
  }
  return lines.join("\n");
}

/** Throws `SDK_ERR_OVER_BUDGET` when the bundle is heavier than the budget. */
export function assertWithinBudget(size: BundleSize, budgetBytes = CLIENT_BUNDLE_BUDGET_GZIP_BYTES): void {
  if (size.gzipBytes > budgetBytes) {
    const heaviest = size.parts.slice(0, 3).map((p) => `${p.name} ${kib(p.bytes)}`).join(", ");
    throw new SdkToolError("SDK_ERR_OVER_BUDGET", `the client bundle is ${kib(size.gzipBytes)} min+gzip, over its budget of ${kib(budgetBytes)} (heaviest: ${heaviest})`);
  }
}

if (import.meta.main) {
  await buildSdk();
  try {
    const size = await measureBundle(WHOLE_CLIENT_ENTRY, REPO_ROOT, {
      "@switchboard/client": `${REPO_ROOT}signaling/client/dist/index.js`,
      "@switchboard/protocol": `${REPO_ROOT}signaling/protocol/dist/index.js`,
    });
    console.log(formatSizeReport("@switchboard/client + @switchboard/protocol + zod, browser bundle", size));
    assertWithinBudget(size);
  } finally {
    await cleanSdk();
  }
}
