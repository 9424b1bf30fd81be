/**
 * Result of a health or readiness check: `ok` plus a JSON-serialisable detail.
 *
 * @since 0.1.0
 */
export interface HealthCheck {
  ok: boolean;
  detail?: unknown;
}

/**
 * Anything the server can ask whether the process is ready (or alive): an
 * object with `check()` (such as a {@link Readiness}) or a plain function.
 *
 * @since 0.1.0
 */
export type HealthSource =
  | { check(): HealthCheck | Promise<HealthCheck> }
  | (() => HealthCheck | Promise<HealthCheck>);
