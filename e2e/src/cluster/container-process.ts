import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/** How a container process ended. */
export interface ProcessExit {
  /** Exit code; 128 + signal number when a signal ended it, as container runtimes report. */
  readonly exitCode: number;
  /** The signal that ended it, if any. */
  readonly signal: NodeJS.Signals | null;
  readonly finishedAt: Date;
}

/** What to run. */
export interface ProcessSpec {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** stdout and stderr are appended here. */
  readonly logFile: string;
  /** "pid start-time" is written here while the process runs, for e2e/cluster/down.sh. */
  readonly pidFile: string;
}

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

/**
 * One container as a local process, in its own process group so that stopping it reaches every
 * process it started, as the end of a container's PID namespace would.
 */
export class ContainerProcess {
  readonly pid: number;
  readonly startedAt: Date;
  /** Resolves once the process has exited and its group was killed. Never rejects. */
  readonly exited: Promise<ProcessExit>;
  readonly #pidFile: string;
  #exit: ProcessExit | undefined;

  private constructor(child: ChildProcess, pidFile: string) {
    if (child.pid === undefined) throw new Error('spawned process has no pid');
    this.pid = child.pid;
    this.#pidFile = pidFile;
    this.startedAt = new Date();
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        // The container's main process is gone: like a PID namespace, the rest of the group goes too.
        killGroup(this.pid, 'SIGKILL');
        rmSync(this.#pidFile, { force: true });
        this.#exit = {
          exitCode: signal === null ? (code ?? 0) : 128 + (SIGNAL_NUMBERS[signal] ?? 0),
          signal,
          finishedAt: new Date(),
        };
        resolve(this.#exit);
      });
    });
  }

  /**
   * Starts a process. Resolves once it is spawned; rejects when the program cannot be started
   * (a missing file, no permission) — the runtime's `StartError`.
   */
  static start(spec: ProcessSpec): Promise<ContainerProcess> {
    const [program, ...args] = spec.argv;
    if (program === undefined) return Promise.reject(new Error('empty command'));
    const fd = openSync(spec.logFile, 'a');
    try {
      const child = spawn(program, args, {
        cwd: spec.cwd,
        env: { ...spec.env },
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      return new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', () => {
          child.off('error', reject);
          // An error after spawn (a failed kill) must not crash the agent; exit is what we track.
          child.on('error', () => undefined);
          const proc = new ContainerProcess(child, spec.pidFile);
          writeFileSync(spec.pidFile, `${proc.pid} ${processStartTime(proc.pid) ?? ''}\n`);
          resolve(proc);
        });
      });
    } finally {
      closeSync(fd);
    }
  }

  /** The exit, once the process has exited. */
  get exit(): ProcessExit | undefined {
    return this.#exit;
  }

  /** Sends a signal to the whole process group. */
  signal(signal: NodeJS.Signals): void {
    if (this.#exit === undefined) killGroup(this.pid, signal);
  }

  /**
   * Stops the process: SIGTERM to its group, then SIGKILL once `graceMs` has passed.
   * Resolves with its exit. Idempotent.
   */
  async stop(graceMs: number): Promise<ProcessExit> {
    if (this.#exit !== undefined) return this.#exit;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), Math.max(0, graceMs));
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    // ESRCH: the group is already gone, which is the goal.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), if it runs;
 * `undefined` when there is no such process or it is a zombie waiting to be reaped.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // no such process
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] === 'Z' ? undefined : fields[19];
}
