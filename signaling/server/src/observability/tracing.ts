import { type Span, SpanStatusCode, trace } from "@opentelemetry/api";

/** The pod's tracer; a no-op until {@link startTracing} installs an SDK. */
export const tracer = trace.getTracer("switchboard-signaling");

let enabled = false;

/**
 * True while {@link startTracing} has an SDK running. Hot paths (the relay) start their spans only
 * then: a no-op span still costs its attributes object and the proxy tracer's delegate lookup on
 * every message.
 */
export function tracingEnabled(): boolean {
  return enabled;
}

/** Handle of a running OpenTelemetry SDK. */
export interface TracingHandle {
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry Node SDK exporting over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT`
 * (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; otherwise does nothing and tracing stays a
 * no-op. Resolves with a handle whose `shutdown` flushes pending spans.
 */
export async function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Promise<TracingHandle | null> {
  if (!env["OTEL_EXPORTER_OTLP_ENDPOINT"] && !env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) return null;
  const [{ NodeSDK }, { OTLPTraceExporter }] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/exporter-trace-otlp-http"),
  ]);
  const sdk = new NodeSDK({ serviceName, traceExporter: new OTLPTraceExporter(), instrumentations: [] });
  sdk.start();
  enabled = true;
  return {
    shutdown: () => {
      enabled = false;
      return sdk.shutdown();
    },
  };
}

/** Ends `span` with an error status naming `code` (never a message that could hold a secret). */
export function endSpanWithError(span: Span, code: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  span.end();
}
