import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (three levels above this file). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Node 24 from the npm package `node`, which runs the pods' TypeScript directly. */
export const NODE_BIN = join(REPO_ROOT, 'node_modules/.bin/node');

/** The e2e/cluster directory: build, up and down scripts. */
export const CLUSTER_SCRIPTS_DIR = join(REPO_ROOT, 'e2e/cluster');

/** Cache root outside the repository. @default ~/.cache/switchboard */
export function cacheDir(): string {
  return process.env['SWITCHBOARD_CACHE'] ?? join(homedir(), '.cache/switchboard');
}

/** Where `make cluster-build` puts the binaries. */
export function clusterBinDir(): string {
  return join(cacheDir(), 'cluster/bin');
}

/** The binaries `make cluster-build` produces. */
export const CLUSTER_BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'helm'] as const;

/** Lists the cluster binaries (and Prometheus) that are missing or not executable. */
export function missingClusterBinaries(): string[] {
  const wanted = [...CLUSTER_BINARIES.map((b) => join(clusterBinDir(), b)), '/usr/bin/prometheus'];
  return wanted.filter((file) => {
    try {
      accessSync(file, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}
