import { isAbsolute, join } from 'node:path';
import { NODE_BIN, REPO_ROOT } from './paths.ts';

/** How the node agent runs a container of one image as a local process. */
export interface ImageCommand {
  /** The image's entrypoint: what runs when the container spec gives no `command`. */
  readonly entrypoint: readonly string[];
  /** Working directory of the process. */
  readonly cwd: string;
  /**
   * Env variable that sets the address the program binds to. The agent sets it to the pod's IP,
   * since pods share the cluster's network namespace and a bind to 0.0.0.0 would collide.
   */
  readonly bindAddressEnv?: string;
}

/** An image map entry: the image repository's suffix and its command. */
export interface ImageMapEntry {
  /** Matches an image whose repository (no tag, no digest) is this or ends with `/` + this. */
  readonly repository: string;
  readonly command: ImageCommand;
}

/**
 * The images of this project: the signaling pod and the operator. Each entrypoint is the one its
 * Dockerfile declares (`signaling/server/Dockerfile`, `operator/Dockerfile`), with the repository's
 * Node 24 for `node` and the repository root for the image's working directory;
 * dockerfiles.test.ts holds them to it.
 */
export const DEFAULT_IMAGE_MAP: readonly ImageMapEntry[] = [
  {
    repository: 'switchboard/signaling',
    command: { entrypoint: [NODE_BIN, '--disable-warning=ExperimentalWarning', 'signaling/server/src/main.ts'], cwd: REPO_ROOT, bindAddressEnv: 'SWITCHBOARD_HOST' },
  },
  {
    repository: 'switchboard/operator',
    command: { entrypoint: [NODE_BIN, '--disable-warning=ExperimentalWarning', 'operator/src/main.ts'], cwd: REPO_ROOT },
  },
];

/** Strips the tag and digest of an image reference: `reg:5000/a/b:1.0@sha256:…` → `reg:5000/a/b`. */
export function imageRepository(image: string): string {
  const noDigest = image.split('@', 1)[0] ?? image;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.indexOf(':', lastSlash + 1);
  return colon < 0 ? noDigest : noDigest.slice(0, colon);
}

/** Finds the command for an image, or `undefined` when the map has none (the pod cannot run). */
export function commandForImage(image: string, map: readonly ImageMapEntry[] = DEFAULT_IMAGE_MAP): ImageCommand | undefined {
  const repo = imageRepository(image);
  return map.find((e) => repo === e.repository || repo.endsWith(`/${e.repository}`))?.command;
}

/**
 * The argv of a container, as a container runtime computes it: the spec's `command` replaces the
 * image's entrypoint and `args` follow. A `command` starting with `node` runs on the repository's
 * Node 24; relative paths resolve against the image's working directory.
 */
export function containerArgv(image: ImageCommand, command: readonly string[] | undefined, args: readonly string[] | undefined): string[] {
  const entry = command !== undefined && command.length > 0 ? command.map((c, i) => (i === 0 && c === 'node' ? NODE_BIN : c)) : image.entrypoint;
  const argv = [...entry, ...(args ?? [])];
  const [program] = argv;
  if (program !== undefined && !isAbsolute(program) && program.includes('/')) argv[0] = join(image.cwd, program);
  return argv;
}
