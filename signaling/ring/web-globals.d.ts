/**
 * The web-platform globals the ring's sources use, as browsers, Node, Deno and workers all define
 * them (WHATWG URL and Encoding). Declared here, narrowly, instead of loading the `dom` or `node`
 * types: those would let the package use anything else of either runtime without a type error.
 * Only the ring's own project loads this file; programs with `node` or `dom` types have their own.
 */

interface WebUrl {
  readonly protocol: string;
  readonly host: string;
}

declare var URL: {
  /** The URL, or null when `url` does not parse. */
  parse(url: string, base?: string): WebUrl | null;
};

declare var TextEncoder: {
  new (): { encode(input?: string): Uint8Array };
};
