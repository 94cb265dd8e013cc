/**
 * The operator's public entry: the SignalingCluster API types and its CRD, for tools (the Helm
 * chart's generator, tests) that need them. The operator itself starts from `main.ts`.
 *
 * @module
 */
export * from "./api/signaling-cluster.ts";
export { CRD_FILE, CRD_NAME, signalingClusterCrd, signalingClusterCrdYaml } from "./api/crd.ts";
