import { writeFileSync } from "node:fs";
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { expandVariables, panelQueries, type Variables } from "@switchboard/dashboards";
import { chromium } from "playwright-core";
import { CHROMIUM_PATH } from "../browser/chromium.ts";

/**
 * What a Grafana dashboard shows, without Grafana (which cannot run here): each time series panel's
 * own queries run against Prometheus over a time range, drawn as SVG on the dashboard's grid with
 * its titles, legends and the dashboard's annotations, in Chromium, saved as a PNG.
 */

/** A range query's answer, one series per label set. */
export interface RangeSeries {
  readonly metric: Record<string, string>;
  readonly values: readonly (readonly [number, string])[];
}

/** Runs a PromQL range query; throws with Prometheus's error on a bad query. */
export async function queryRange(prometheusUrl: string, expr: string, startS: number, endS: number, stepS: number): Promise<RangeSeries[]> {
  const url = new URL("/api/v1/query_range", prometheusUrl);
  url.search = new URLSearchParams({ query: expr, start: String(startS), end: String(endS), step: String(stepS) }).toString();
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; error?: string; data?: { result: RangeSeries[] } };
  if (body.status !== "success") throw new Error(`${body.error ?? `HTTP ${res.status}`}: ${expr}`);
  return body.data?.result ?? [];
}

/** Grafana's legend format: `{{label}}` replaced by the series' label value. */
export function legendOf(format: string, metric: Record<string, string>): string {
  const text = format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_m, l: string) => metric[l] ?? "");
  return text || JSON.stringify(metric);
}

interface DrawnSeries {
  readonly name: string;
  readonly points: readonly [number, number][];
}
interface DrawnPanel {
  readonly title: string;
  readonly unit: string;
  readonly grid: { x: number; y: number; w: number; h: number };
  readonly series: readonly DrawnSeries[];
}

const COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a", "#96d98d", "#ffa6b0"];
const CELL_W = 60;
const CELL_H = 34;

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);
}

function fmt(v: number, unit: string): string {
  if (unit === "s") return v >= 1 ? `${v.toFixed(1)} s` : `${(v * 1000).toFixed(v * 1000 >= 10 ? 0 : 1)} ms`;
  if (unit === "bytes") return `${(v / 2 ** 20).toFixed(0)} MiB`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].find((m) => m * p >= raw) ?? 10) * p;
}

function svgPanel(p: DrawnPanel, startS: number, endS: number, gapS: number, marks: readonly { atS: number; text: string }[]): string {
  const w = p.grid.w * CELL_W - 8;
  const h = p.grid.h * CELL_H - 8;
  const left = 54;
  const top = 26;
  const plotW = w - left - 12;
  const plotH = h - top - 22 - 16 * Math.ceil(p.series.length / 3);
  const all = p.series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
  const min = Math.min(0, ...all);
  const tick = niceStep((Math.max(1e-9, ...all) - min) / 4);
  const max = min + tick * Math.max(1, Math.ceil((Math.max(1e-9, ...all) - min) / tick));
  const x = (t: number) => left + ((t - startS) / (endS - startS)) * plotW;
  const y = (v: number) => top + plotH - ((v - min) / (max - min)) * plotH;
  const parts: string[] = [`<rect width="${w}" height="${h}" rx="3" fill="#181b1f" stroke="#2c3235"/>`, `<text x="8" y="17" class="title">${esc(p.title)}</text>`];
  for (let v = min; v <= max + tick / 2; v += tick) {
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`, `<text x="${left - 4}" y="${y(v) + 3}" class="axis" text-anchor="end">${esc(fmt(v, p.unit))}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const t = startS + ((endS - startS) * i) / 4;
    parts.push(`<text x="${x(t)}" y="${top + plotH + 13}" class="axis" text-anchor="middle">${Math.round(t - startS)} s</text>`);
  }
  for (const m of marks) parts.push(`<line x1="${x(m.atS)}" x2="${x(m.atS)}" y1="${top}" y2="${top + plotH}" class="mark"/>`);
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    // A gap in the samples (a scrape target gone, a new leader not yet exporting) is drawn as a gap, as Grafana does.
    const d = s.points
      .filter(([, v]) => Number.isFinite(v))
      .map(([t, v], k, pts) => `${k === 0 || t - (pts[k - 1] as [number, number])[0] > gapS ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
      .join("");
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    const lx = 8 + (i % 3) * ((w - 16) / 3);
    const ly = top + plotH + 30 + Math.floor(i / 3) * 16;
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="12" height="3" fill="${color}"/><text x="${lx + 16}" y="${ly - 3}" class="legend">${esc(s.name)}</text>`);
  });
  if (p.series.length === 0) parts.push(`<text x="${w / 2}" y="${h / 2}" class="axis" text-anchor="middle">No data</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" style="position:absolute;left:${p.grid.x * CELL_W + 4}px;top:${p.grid.y * CELL_H + 44}px">${parts.join("")}</svg>`;
}

/** Options of {@link renderDashboard}. */
export interface RenderOptions {
  readonly dashboard: Dashboard;
  readonly prometheusUrl: string;
  readonly variables: Variables;
  readonly startS: number;
  readonly endS: number;
  readonly stepS: number;
  /** Where the PNG goes. */
  readonly out: string;
  /** A line under the title (what the run did). */
  readonly caption: string;
}

/** Draws the dashboard's time series panels (see the module comment); returns the panels drawn. */
export async function renderDashboard(o: RenderOptions): Promise<number> {
  const queries = panelQueries(o.dashboard);
  const panels: DrawnPanel[] = [];
  const rows: { title: string; y: number }[] = [];
  for (const raw of o.dashboard.panels ?? []) {
    const p = raw as { type?: string; title?: string; gridPos?: { x: number; y: number; w: number; h: number }; fieldConfig?: { defaults?: { unit?: string } } };
    if (p.type === "row" && p.gridPos !== undefined) rows.push({ title: p.title ?? "", y: p.gridPos.y });
    if (p.type !== "timeseries" || p.gridPos === undefined) continue;
    const series: DrawnSeries[] = [];
    for (const q of queries.filter((q) => q.panel === p.title)) {
      for (const s of await queryRange(o.prometheusUrl, expandVariables(q.expr, o.variables), o.startS, o.endS, o.stepS)) {
        series.push({ name: legendOf(q.legend, s.metric), points: s.values.map(([t, v]) => [t, Number(v)]) });
      }
    }
    panels.push({ title: p.title ?? "", unit: p.fieldConfig?.defaults?.unit ?? "short", grid: p.gridPos, series });
  }
  const marks: { atS: number; text: string }[] = [];
  for (const q of queries.filter((q) => q.panel.startsWith("annotation:"))) {
    for (const s of await queryRange(o.prometheusUrl, expandVariables(q.expr, o.variables), o.startS, o.endS, o.stepS)) {
      let last = -Infinity;
      for (const [t] of s.values) {
        if (t - last > o.stepS * 6) marks.push({ atS: t, text: s.metric["direction"] ?? "" });
        last = t;
      }
    }
  }
  const height = Math.max(...panels.map((p) => (p.grid.y + p.grid.h) * CELL_H)) + 60;
  const html = `<!doctype html><html><head><style>
    body { margin: 0; background: #111217; font-family: Inter, Helvetica, Arial, sans-serif; }
    .head { color: #ccccdc; font-size: 15px; padding: 10px 12px; } .head small { color: #8e8e9a; margin-left: 12px; }
    .title { fill: #ccccdc; font-size: 13px; font-weight: 500; } .axis { fill: #8e8e9a; font-size: 10px; } .legend { fill: #ccccdc; font-size: 10px; }
    .grid { stroke: #2c3235; stroke-width: 1; } .row { position: absolute; left: 8px; color: #ccccdc; font-size: 14px; font-weight: 500; } .mark { stroke: #ff9830; stroke-width: 1; stroke-dasharray: 3 3; }
  </style></head><body style="width:${24 * CELL_W + 8}px;height:${height}px;position:relative">
    <div class="head">${esc(o.dashboard.title ?? "")}<small>${esc(o.caption)}</small><small>dashed: scale events</small></div>
    ${rows.map((r) => `<div class="row" style="top:${r.y * CELL_H + 50}px">${esc(r.title)}</div>`).join("\n")}
    ${panels.map((p) => svgPanel(p, o.startS, o.endS, o.stepS * 3, marks)).join("\n")}
  </body></html>`;
  // No WebRTC here, so no loopback-only namespace: a page of inline SVG that may fetch nothing.
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 24 * CELL_W + 8, height } });
    await page.route("**/*", (route) => route.abort());
    await page.setContent(html);
    writeFileSync(o.out, await page.screenshot({ fullPage: true, type: "png" }));
  } finally {
    await browser.close();
  }
  return panels.length;
}
