/**
 * A description of the machine and software a run used, written into the JSON and the docs.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg, release, totalmem } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly ws: string;
  readonly peer: string;
  /** Open-file limit (soft/hard) of this process, inherited by servers and workers. */
  readonly openFilesLimit: string;
  readonly ephemeralPorts: string;
  /** 1-, 5- and 15-minute load averages when the run started. */
  readonly loadAtStart: readonly number[];
  /**
   * Whether the kernel schedules by autogroup (`kernel.sched_autogroup_enabled`): CPU is shared
   * between sessions first, so a thread's niceness counts only inside its own session.
   */
  readonly schedAutogroup: "on" | "off" | "absent";
}

const require = createRequire(import.meta.url);

/** The installed version of `pkg` (found from its entry point: some packages do not export package.json). */
function versionOf(pkg: string): string {
  try {
    let dir = dirname(require.resolve(pkg));
    for (let i = 0; i < 5; i++, dir = dirname(dir)) {
      const manifest = JSON.parse(read(join(dir, "package.json"), "{}")) as { name?: string; version?: string };
      if (manifest.name === pkg && manifest.version) return manifest.version;
    }
  } catch {
    // Not installed: reported as unknown.
  }
  return "unknown";
}

function read(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

/** Reads the machine description now. */
export function describeMachine(): MachineInfo {
  const cpuinfo = read("/proc/cpuinfo", "");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const limits = read("/proc/self/limits", "");
  const files = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const autogroup = read("/proc/sys/kernel/sched_autogroup_enabled", "").trim();
  return {
    cpus: availableParallelism(),
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    ws: versionOf("ws"),
    peer: versionOf("peer"),
    openFilesLimit: files ? `${files[1]}/${files[2]}` : "unknown",
    ephemeralPorts: read("/proc/sys/net/ipv4/ip_local_port_range", "unknown").trim().replace(/\s+/, "-"),
    loadAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    schedAutogroup: autogroup === "1" ? "on" : autogroup === "0" ? "off" : "absent",
  };
}
