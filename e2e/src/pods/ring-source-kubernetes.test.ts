/**
 * The pods' Kubernetes ring source against a real API server (the local control plane): the first
 * document, new versions (with the measured delay from the write to the delivery), an older
 * version written, an invalid document, the ConfigMap deleted and re-created, and watches ended
 * by the server.
 *
 * Not here: 410 Gone. This API server's watch cache serves a watch from any resourceVersion since
 * it started (even 1, after etcd was compacted: tried), and a watcher's resourceVersion only
 * falls out of it once the cache evicts (minutes of writes, unless bookmarks keep it fresh) or
 * the API server restarts. The source's handling of 410, both as an HTTP status and as an ERROR event,
 * is tested on a fake API server on a real socket (signaling/server/src/cluster/ring-source-kubernetes.test.ts).
 *
 * Needs `make cluster-build` and root; fails (never skips) without them.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubeConfig } from "@kubernetes/client-node";
import { serializeRingDocument, type RingDocument } from "@switchboard/ring";
import { kubernetesRingSource, type KubernetesRingSourceOptions } from "@switchboard/server/testing";
import { startLocalCluster, type LocalCluster } from "../cluster/local-cluster.ts";

const NAME = "switchboard-ring";

function ringText(version: number): string {
  return serializeRingDocument({
    version,
    members: [
      { name: "switchboard-0", address: "10.244.1.10:8080", state: "ACTIVE", uid: "0b9d2f4e-5c1a-4e7b-9f3d-2a8c6e1b7d40" },
      { name: "switchboard-1", address: "10.244.1.11:8080", state: version % 2 === 0 ? "ACTIVE" : "JOINING" },
    ],
  });
}

/** What one source delivered and reported, with waits on both. */
class Observed {
  readonly docs: Array<{ doc: RingDocument; atMs: number }> = [];
  readonly errors: Error[] = [];
  #waiters: Array<() => void> = [];

  onChange = (doc: RingDocument): void => {
    this.docs.push({ doc, atMs: performance.now() });
    this.#wake();
  };

  onError = (err: Error): void => {
    this.errors.push(err);
    this.#wake();
  };

  get versions(): number[] {
    return this.docs.map((d) => d.doc.version);
  }

  /** Resolves once `check` holds; rejects after `timeoutMs`. */
  async until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!check()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; delivered ${this.versions.join(",")}, errors: ${this.errors.map((e) => e.message).join(" | ")}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

const codeOf = (err: Error): unknown => (err as { code?: unknown }).code;

async function writeRing(cluster: LocalCluster, text: string): Promise<void> {
  await cluster.core.replaceNamespacedConfigMap({ name: NAME, namespace: cluster.namespace, body: { metadata: { name: NAME }, data: { "ring.json": text } } });
}

test("the ring from a ConfigMap through a real API server", async (t) => {
  const cluster = await startLocalCluster();
  t.after(() => cluster.close());
  const namespace = cluster.namespace;
  await cluster.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: NAME }, data: { "ring.json": ringText(1) } } });

  /** A started source, stopped after the test; `kubeConfig` null: the default loading, as in a pod. */
  const start = async (observed: Observed, options: Partial<KubernetesRingSourceOptions> = {}, kubeConfig: KubeConfig | null = cluster.kubeConfig) => {
    const source = await kubernetesRingSource({ namespace, name: NAME, ...(kubeConfig ? { kubeConfig } : {}), ...options });
    t.after(() => source.stop());
    const first = await source.start(observed.onChange, observed.onError);
    return { source, first };
  };

  const main = new Observed();
  // Credentials as a pod finds them: KUBECONFIG (in a pod, the node agent sets it to its service account's).
  process.env["KUBECONFIG"] = cluster.kubeconfigPath;
  const { source, first } = await start(main, {}, null);
  delete process.env["KUBECONFIG"];

  await t.test("the first document, then each new version; the delay from write to delivery", async () => {
    assert.equal(first.version, 1);
    assert.equal(first.members[0]?.uid, "0b9d2f4e-5c1a-4e7b-9f3d-2a8c6e1b7d40");
    const delaysMs: number[] = [];
    for (let version = 2; version <= 6; version++) {
      const before = performance.now();
      await writeRing(cluster, ringText(version));
      await main.until(() => main.versions.includes(version), `version ${version}`);
      delaysMs.push((main.docs.at(-1)?.atMs ?? 0) - before);
    }
    console.log(`ring write -> delivery (ms): ${delaysMs.map((ms) => ms.toFixed(1)).join(", ")}`);
    assert.deepEqual(main.versions, [1, 2, 3, 4, 5, 6], "every version once, in order (the first one also as start's result)");
    assert.deepEqual(main.errors, []);
  });

  await t.test("an older version written is not delivered", async () => {
    await writeRing(cluster, ringText(3));
    await writeRing(cluster, ringText(7));
    // The watch is ordered: once 7 arrived, 3 was seen and dropped.
    await main.until(() => main.versions.includes(7), "version 7");
    assert.deepEqual(main.versions.slice(-2), [6, 7]);
  });

  await t.test("an invalid document is reported and ignored; the next valid one is delivered", async () => {
    await writeRing(cluster, "{not a ring");
    await main.until(() => main.errors.some((e) => codeOf(e) === "RING_ERR_INVALID_DOCUMENT"), "the error");
    await writeRing(cluster, JSON.stringify({ version: 8, members: [{ name: "-bad-", address: "x", state: "ACTIVE" }] }));
    await writeRing(cluster, ringText(8));
    await main.until(() => main.versions.includes(8), "version 8");
    assert.deepEqual(main.errors.map(codeOf), ["RING_ERR_INVALID_DOCUMENT", "RING_ERR_INVALID_DOCUMENT"]);
    assert.equal(main.docs.at(-1)?.doc.members.length, 2);
  });

  await t.test("the ConfigMap deleted (the ring stays) and created again", async () => {
    main.errors.length = 0;
    await cluster.core.deleteNamespacedConfigMap({ name: NAME, namespace });
    await main.until(() => main.errors.some((e) => codeOf(e) === "RING_ERR_KUBE_DELETED"), "the deletion");
    await cluster.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: NAME }, data: { "ring.json": ringText(9) } } });
    await main.until(() => main.versions.includes(9), "version 9");
    assert.deepEqual(main.errors.map(codeOf), ["RING_ERR_KUBE_DELETED"]);
    assert.equal(source.lists, 1, "no relist: the watch saw both");
  });

  await t.test("watches the server ends (timeoutSeconds) are renewed from the last resourceVersion, losing nothing", async () => {
    const cut = new Observed();
    const { source: short, first: now } = await start(cut, { watchTimeoutSeconds: 1 });
    assert.equal(now.version, 9);
    const startedMs = performance.now();
    // Several server-side ends, then a write in the gap between two watches or during one.
    await cut.until(() => short.watches >= 4, "three server-side ends of the watch");
    await writeRing(cluster, ringText(10));
    await cut.until(() => cut.versions.includes(10), "version 10 on the short watch");
    await main.until(() => main.versions.includes(10), "version 10 on the long one");
    assert.deepEqual(cut.errors, [], "a server-side end is not an error");
    assert.equal(short.lists, 1, "no relist");
    console.log(`watches with timeoutSeconds 1: ${short.watches} in ${((performance.now() - startedMs) / 1000).toFixed(1)} s; with the default: ${source.watches}`);
    await short.stop();
    const after = short.watches;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(short.watches, after, "no watch after stop()");
  });
});
