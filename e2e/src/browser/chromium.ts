import { networkInterfaces } from "node:os";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

/** Debian's Chromium; the tests never download a browser. */
export const CHROMIUM_PATH = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";

/**
 * Flags that make WebRTC work headless on a machine without network: fake camera and permission
 * prompts, plain 127.0.0.1 host candidates (no mDNS names), and no background traffic to Google.
 */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
];

/**
 * Launches headless Chromium; the caller closes it. Refuses to run outside a network namespace
 * that has only loopback (e2e/scripts/in-loopback-netns.sh), because ICE would otherwise find and
 * use the machine's other interfaces.
 */
export function launchChromium(): Promise<Browser> {
  const others = Object.keys(networkInterfaces()).filter((name) => name !== "lo");
  if (others.length > 0) {
    throw new Error(`browser tests must run with loopback only (found ${others.join(", ")}); use npm run test:browser`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Opens the demo page in a fresh context (its own storage, so its own device id) and connects it
 * as `user`. Page errors and console errors are collected in `errors`.
 */
export async function openDemo(browser: Browser, baseUrl: string, user: string, query = "loopbackOnly=1"): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  await page.goto(`${baseUrl}/?${query}`);
  await page.waitForFunction(() => "demo" in window);
  await page.evaluate((u) => (window as unknown as { demo: { connect(u: string): Promise<void> } }).demo.connect(u), user);
  return { context, page, errors };
}

/** The demo's state snapshot (see demo.ts `snapshot`). */
export interface DemoSnapshot {
  signaling: string;
  session: { peerId: string; userId: string; pod: string } | null;
  room: string | null;
  call: { callId: string; role: string; state: string; peerKey: string | null } | null;
  incoming: { callId: string; from: string } | null;
  lastCallEnd: string | null;
  chatReceived: string[];
  iceErrors: number[];
  peers: Array<{ key: string; ice: string; connection: string; chat: string; remoteTracks: string[]; localUfrag: string | null }>;
}

/** Reads the demo's snapshot. */
export function snapshot(page: Page): Promise<DemoSnapshot> {
  return page.evaluate(() => (window as unknown as { demo: { snapshot(): DemoSnapshot } }).demo.snapshot());
}

/** Calls a `window.demo` function by name with JSON arguments. */
export function demoCall<T = unknown>(page: Page, fn: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(([f, a]) => (window as unknown as { demo: Record<string, (...x: unknown[]) => unknown> }).demo[f as string]?.(...(a as unknown[])), [fn, args] as const) as Promise<T>;
}

/** Polls the snapshot until `predicate` holds; rejects after `timeoutMs` with the last snapshot. */
export async function waitForSnapshot(page: Page, predicate: (s: DemoSnapshot) => boolean, timeoutMs = 40_000): Promise<DemoSnapshot> {
  const deadline = Date.now() + timeoutMs;
  let last: DemoSnapshot | null = null;
  while (Date.now() < deadline) {
    last = await snapshot(page);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = await page.evaluate(() => (window as unknown as { demo: { log: string[] } }).demo.log.slice(-20));
  throw new Error(`condition not reached in ${timeoutMs} ms; last snapshot: ${JSON.stringify(last)}\npage log:\n${log.join("\n")}`);
}
