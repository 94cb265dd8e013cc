/**
 * Reads a process's CPU time and memory from `/proc/<pid>/stat` and `/proc/<pid>/status`: the
 * bench measures its targets from outside, so the measuring costs them nothing.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { setPriority } from "node:os";

/** Clock ticks per second of `/proc/<pid>/stat` times. */
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/**
 * CPU time of `pid`, in seconds: the scheduler's nanosecond run time summed over every thread
 * (`/proc/<pid>/task/<tid>/schedstat`, field 1). `utime + stime` from `/proc/<pid>/stat` is
 * sampled at the clock tick on many kernels, too coarse for an idle process at 1 % of a core; it
 * is the fallback when schedstat is missing. Threads that exit inside a window drop out of it.
 */
export function cpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // The thread exited between the listing and the read.
      }
    }
    return ns / 1e9;
  } catch {
    return tickSeconds(pid);
  }
}

/** User + system CPU time of `pid` from `/proc/<pid>/stat`, in seconds (tick resolution). */
export function tickSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; the fields after it start past the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the full line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident memory of a process, in bytes. */
export interface Rss {
  readonly rss: number;
  /** Anonymous memory (heaps, stacks, malloc): what grows with connections. */
  readonly anon: number;
  /** File-backed pages (the node binary, shared libraries). */
  readonly file: number;
}

/** `VmRSS`, `RssAnon` and `RssFile` of `pid`, in bytes. */
export function rssOf(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") };
}

/**
 * CPU time used by the whole machine (every core, every process, the kernel), in seconds, from
 * `/proc/stat`: user, nice, system, irq, softirq and steal ticks.
 */
export function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] as string;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLK_TCK;
}

/**
 * Measures what other processes on the machine used during a window: the machine's busy time
 * minus that of the given processes (server, load workers, the runner itself). The box is shared;
 * this tells a quiet window from a disturbed one.
 */
export class ForeignCpuMeter {
  readonly #ours: CpuMeter;
  #busy0 = 0;
  #wall0 = 0;

  constructor(ourPids: readonly number[]) {
    this.#ours = new CpuMeter([...ourPids, process.pid]);
  }

  start(): this {
    this.#ours.start();
    this.#busy0 = machineBusySeconds();
    this.#wall0 = performance.now();
    return this;
  }

  /** Other processes' CPU over the window, in percent of one core (never below 0). */
  stop(): number {
    const ours = this.#ours.stop().cpuSeconds;
    const busy = machineBusySeconds() - this.#busy0;
    const wall = (performance.now() - this.#wall0) / 1000;
    return wall > 0 ? Math.max(0, ((busy - ours) / wall) * 100) : 0;
  }
}

/** Measures the CPU used by a set of processes between `start` and `stop`. */
export class CpuMeter {
  readonly #pids: readonly number[];
  #cpu0 = 0;
  #wall0 = 0;

  constructor(pids: readonly number[]) {
    this.#pids = pids;
  }

  start(): this {
    this.#cpu0 = this.#total();
    this.#wall0 = performance.now();
    return this;
  }

  /** CPU used since `start`, in percent of one core, and the window in seconds. */
  stop(): { percentOfCore: number; cpuSeconds: number; wallSeconds: number } {
    const cpu = this.#total() - this.#cpu0;
    const wall = (performance.now() - this.#wall0) / 1000;
    return { percentOfCore: wall > 0 ? (cpu / wall) * 100 : 0, cpuSeconds: cpu, wallSeconds: wall };
  }

  #total(): number {
    let sum = 0;
    for (const pid of this.#pids) {
      try {
        sum += cpuSeconds(pid);
      } catch {
        // A process that exited contributes what it used until then: nothing more to read.
      }
    }
    return sum;
  }
}

/**
 * Sets the niceness of every thread of `pid` (Linux applies `setpriority` to one thread; a thread
 * takes its creator's niceness only when it starts, so V8's and libuv's threads of a process that
 * is already running keep theirs). A negative value needs root (CAP_SYS_NICE); failures throw.
 */
export function renice(pid: number, nice: number): void {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      setPriority(Number(tid), nice);
    } catch (err) {
      // A thread that exited between the listing and the call is no failure.
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}

/**
 * Sets the niceness of this process's autogroup (`/proc/self/autogroup`), which the servers and
 * the load workers share: they run in the runner's session. With autogroup scheduling on
 * (`kernel.sched_autogroup_enabled`), the kernel first shares the CPU between sessions, each
 * weighted by its autogroup's niceness, and only inside a session by each thread's own niceness:
 * a server thread at nice −10 still gets no more than an equal share against another session's
 * test run at nice 0, or a build at nice 15. A negative value needs root (CAP_SYS_NICE). Returns
 * the previous niceness, or null when the kernel has no autogroups or they are off.
 */
export function setAutogroupNice(nice: number): number | null {
  let current: string;
  try {
    if (readFileSync("/proc/sys/kernel/sched_autogroup_enabled", "utf8").trim() !== "1") return null;
    current = readFileSync("/proc/self/autogroup", "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  const m = /nice (-?\d+)/.exec(current);
  if (!m) return null;
  writeFileSync("/proc/self/autogroup", String(nice));
  return Number(m[1]);
}
