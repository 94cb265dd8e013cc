/**
 * Health, readiness and the Prometheus endpoint of a real pod, and the metrics that traffic moves.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { eventually, metricValue, startPod } from "../testing/pod.ts";
import { ALL_ERROR_CODES } from "@switchboard/protocol";
import { PodMetrics, SCRAPE_WALKING_METRICS } from "./metrics.ts";

describe("health and readiness", () => {
  test("/healthz and /readyz answer 200 while serving; unknown paths 404", async (t) => {
    const pod = await startPod(t, { demoPage: false });
    const health = await pod.http("/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: "ok" });
    const ready = await pod.http("/readyz");
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: "ready", draining: false });
    assert.equal((await pod.http("/nope")).status, 404);
  });
});

describe("/metrics", () => {
  test("a fresh pod exports every error code at 0 (a rate sees the first error; dashboards show 0, not no data)", async (t) => {
    const pod = await startPod(t, { podName: "pod-z" });
    const text = await pod.metrics();
    for (const code of ALL_ERROR_CODES) assert.equal(metricValue(text, "switchboard_errors_total", { code }), 0, code);
  });

  test("exposes live gauges, message counters and the relay latency histogram", async (t) => {
    const pod = await startPod(t, { podName: "pod-m" });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    await a.client.request({ type: "offer", room: "r", to: b.peerId, sdp: "v=0\r\n" });
    await b.client.nextOf("offer");
    a.client.sendText("not json");
    await a.client.nextOf("error");

    const res = await fetch(`${pod.server.httpUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await res.text();
    assert.equal(metricValue(text, "switchboard_connections", { pod: "pod-m" }), 2);
    assert.equal(metricValue(text, "switchboard_sessions"), 2);
    assert.equal(metricValue(text, "switchboard_rooms"), 1);
    assert.equal(metricValue(text, "switchboard_calls"), 0);
    assert.equal(metricValue(text, "switchboard_ready"), 1);
    assert.equal(metricValue(text, "switchboard_messages_in_total", { type: "join" }), 2);
    assert.equal(metricValue(text, "switchboard_messages_in_total", { type: "hello" }), 2);
    assert.equal(metricValue(text, "switchboard_messages_in_total", { type: "offer" }), 1);
    assert.equal(metricValue(text, "switchboard_messages_out_total", { type: "offer" }), 1);
    assert.equal(metricValue(text, "switchboard_messages_out_total", { type: "peer-joined" }), 1);
    assert.equal(metricValue(text, "switchboard_errors_total", { code: "SIG_ERR_BAD_JSON" }), 1);
    assert.match(text, /^switchboard_relay_latency_seconds_bucket\{le="0\.00005",pod="pod-m"\} \d+$/m);
    assert.equal(metricValue(text, "switchboard_relay_latency_seconds_bucket", { le: "+Inf" }), 1);
    assert.equal(metricValue(text, "switchboard_relay_latency_seconds_count"), 1);
    assert.doesNotMatch(text, /nodejs_eventloop_lag/, "default metrics off in this pod");

    // Gauges follow the state at scrape time.
    await a.client.close();
    await b.client.close();
    await eventually(() => pod.server.gateway.connectionCount === 0, "sockets closed");
    const after = await pod.metrics();
    assert.equal(metricValue(after, "switchboard_connections"), 0);
    assert.equal(metricValue(after, "switchboard_sessions"), 0);
    assert.equal(metricValue(after, "switchboard_rooms"), 0);
    assert.equal(metricValue(after, "switchboard_socket_closes_total", { code: "1000" }), 2);
  });

  test("with default metrics on, Node's event loop lag is exported", async (t) => {
    const pod = await startPod(t, {}, { defaultMetrics: true });
    const text = (await pod.http("/metrics")).text;
    assert.match(text, /^nodejs_eventloop_lag_p99_seconds\{pod="switchboard-0"\} [\d.e+-]+$/m);
    assert.match(text, /^process_cpu_seconds_total/m);
    for (const name of SCRAPE_WALKING_METRICS) assert.doesNotMatch(text, new RegExp(`^${name}[{ ]`, "m"), `${name} walks every socket at each scrape`);
  });

  test("each PodMetrics has its own registry, so pods in one process do not collide", () => {
    const one = new PodMetrics("one", { defaultMetrics: false });
    const two = new PodMetrics("two", { defaultMetrics: false });
    one.messageIn("join");
    one.messageIn("join");
    two.messageIn("join");
    one.error("SIG_ERR_BAD_JSON");
    return Promise.all([one.render(), two.render()]).then(([a, b]) => {
      assert.equal(metricValue(a.body, "switchboard_messages_in_total", { type: "join", pod: "one" }), 2);
      assert.equal(metricValue(b.body, "switchboard_messages_in_total", { type: "join", pod: "two" }), 1);
      assert.equal(metricValue(b.body, "switchboard_errors_total", { code: "SIG_ERR_BAD_JSON" }), 0);
      assert.equal(metricValue(a.body, "switchboard_connections"), 0, "no live source: 0");
    });
  });
});
