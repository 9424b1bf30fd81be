import http from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { gzip as gzipCallback } from "node:zlib";
import { type Duration, parseDuration } from "@sluice/schema";
import type { Registry, RegistryContentType } from "prom-client";
import type { HealthCheck, HealthSource } from "./health-check.js";
import {
  negotiate,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
  render,
} from "./internal/exposition.js";
import { ObservabilityError } from "./observability-error.js";

/**
 * Options of {@link startObservabilityServer}.
 *
 * @since 0.1.0
 */
export interface ObservabilityServerOptions {
  /** TCP port; `0` picks a free one (read it back from `server.port`). */
  port: number;
  /**
   * Interface to bind. Keep loopback unless a scraper on another host needs it.
   * @defaultValue `"127.0.0.1"`
   */
  host?: string;
  /** Registry served on `/metrics`. */
  registry: Registry<RegistryContentType>;
  /**
   * Answers `/readyz`, usually {@link createReadiness}.
   * @defaultValue always ready
   */
  readiness?: HealthSource;
  /**
   * Answers `/healthz`.
   * @defaultValue alive while the server is open
   */
  liveness?: HealthSource;
  /**
   * How long `close()` waits for in-flight requests before cutting connections.
   * @defaultValue `"5s"`
   */
  closeTimeout?: Duration;
}

/**
 * A running observability server. See {@link startObservabilityServer}.
 *
 * @since 0.1.0
 */
export interface ObservabilityServer {
  /** Base URL, for example `http://127.0.0.1:9464`. */
  readonly url: string;
  /** The bound port. */
  readonly port: number;
  /** Lifecycle state. */
  readonly status: "opening" | "open" | "closing" | "closed";
  /**
   * Stops accepting connections, lets in-flight requests finish (up to
   * `closeTimeout`), then closes. Idempotent.
   */
  close(): Promise<void>;
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const gzipAsync = promisify(gzipCallback);

function invalid(message: string): ObservabilityError {
  return new ObservabilityError(
    "OBSERVABILITY_INVALID_OPTIONS",
    `startObservabilityServer: ${message}`,
  );
}

async function ask(source: HealthSource | undefined, fallback: HealthCheck): Promise<HealthCheck> {
  if (!source) return fallback;
  try {
    const result = typeof source === "function" ? await source() : await source.check();
    return { ok: result?.ok === true, detail: result?.detail };
  } catch (err) {
    return { ok: false, detail: { error: (err as Error)?.message ?? String(err) } };
  }
}

function validHealthSource(v: unknown): boolean {
  return (
    v === undefined ||
    typeof v === "function" ||
    (typeof v === "object" && v !== null && typeof (v as { check?: unknown }).check === "function")
  );
}

/**
 * Starts an HTTP server exposing exactly three endpoints (GET or HEAD):
 *
 * - `/metrics` — the registry in the Prometheus text format, or OpenMetrics
 *   when the `Accept` header prefers `application/openmetrics-text`;
 * - `/healthz` — liveness: 200 `{"ok":true}` while the process serves;
 * - `/readyz` — 200 when `readiness` says ready, else 503, with the reasons as JSON.
 *
 * Anything else is 404 (405 for other methods). Binds to loopback by default.
 *
 * @param options - {@link ObservabilityServerOptions}
 * @returns the listening {@link ObservabilityServer}
 * @throws ObservabilityError `OBSERVABILITY_INVALID_OPTIONS` for a bad option,
 *   `OBSERVABILITY_LISTEN_FAILED` when the port cannot be bound
 * @example
 * ```ts
 * const registry = new Registry();
 * const metrics = createMetrics({ registry });
 * const readiness = createReadiness();
 * await using server = await startObservabilityServer({ port: 9464, registry, readiness });
 * ```
 * @since 0.1.0
 */
export async function startObservabilityServer(
  options: ObservabilityServerOptions,
): Promise<ObservabilityServer> {
  if (typeof options !== "object" || options === null) throw invalid("options must be an object");
  const { port, host = "127.0.0.1", registry, readiness, liveness } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalid(`port must be an integer from 0 to 65535; got ${JSON.stringify(port)}`);
  }
  if (typeof host !== "string" || host.length === 0) {
    throw invalid(`host must be a non-empty string; got ${JSON.stringify(host)}`);
  }
  if (
    !registry ||
    typeof (registry as { getMetricsAsJSON?: unknown }).getMetricsAsJSON !== "function"
  ) {
    throw invalid("registry must be a prom-client Registry");
  }
  if (!validHealthSource(readiness))
    throw invalid("readiness must be a function or an object with check()");
  if (!validHealthSource(liveness))
    throw invalid("liveness must be a function or an object with check()");
  let closeTimeoutMs: number;
  try {
    closeTimeoutMs = parseDuration(options.closeTimeout ?? "5s", "closeTimeout");
  } catch (err) {
    throw invalid((err as Error).message);
  }

  let status: "opening" | "open" | "closing" | "closed" = "opening";

  const send = (
    res: http.ServerResponse,
    head: boolean,
    code: number,
    type: string,
    content: string | Buffer,
    encoding?: "gzip",
  ) => {
    // While closing, tell keep-alive clients to go so close() need not wait for them.
    if (status !== "open") res.setHeader("connection", "close");
    const body = typeof content === "string" ? Buffer.from(content) : content;
    res.writeHead(code, {
      "content-type": type,
      "content-length": body.length,
      "cache-control": "no-store",
      ...(encoding ? { "content-encoding": encoding } : {}),
    });
    res.end(head ? undefined : body);
  };
  const json = (res: http.ServerResponse, head: boolean, check: HealthCheck) =>
    send(
      res,
      head,
      check.ok ? 200 : 503,
      "application/json; charset=utf-8",
      `${JSON.stringify(check)}\n`,
    );

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    const known = path === "/metrics" || path === "/healthz" || path === "/readyz";
    if (!known) return send(res, false, 404, "text/plain; charset=utf-8", "not found\n");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return send(res, false, 405, "text/plain; charset=utf-8", "method not allowed\n");
    }
    const head = req.method === "HEAD";
    if (path === "/metrics") {
      const format = negotiate(req.headers.accept);
      try {
        const body = await render(registry, format);
        res.setHeader("vary", "accept, accept-encoding");
        // Prometheus asks for gzip; large registries shrink about tenfold.
        const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
        const content = gzip ? await gzipAsync(body) : body;
        return send(
          res,
          head,
          200,
          format === "openmetrics" ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE,
          content,
          gzip ? "gzip" : undefined,
        );
      } catch (err) {
        return send(
          res,
          head,
          500,
          "text/plain; charset=utf-8",
          `metrics collection failed: ${(err as Error)?.message}\n`,
        );
      }
    }
    if (path === "/healthz") {
      if (status !== "open") return json(res, head, { ok: false, detail: { status } });
      return json(res, head, await ask(liveness, { ok: true }));
    }
    if (status !== "open") return json(res, head, { ok: false, detail: { status } });
    return json(
      res,
      head,
      await ask(readiness, { ok: true, detail: "no readiness check configured" }),
    );
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.keepAliveTimeout = 5_000;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    throw new ObservabilityError(
      "OBSERVABILITY_LISTEN_FAILED",
      `startObservabilityServer: cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose another port or stop the process using it`,
      { cause: err, retryable: true },
    );
  }
  status = "open";
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      status = "closing";
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), closeTimeoutMs);
      timer.unref();
      await done;
      clearTimeout(timer);
      status = "closed";
    })();
    return closing;
  };

  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    get status() {
      return status;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
