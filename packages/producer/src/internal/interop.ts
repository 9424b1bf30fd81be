/** Unwraps a CommonJS module's `default` (or nested `default.default`) export. */
export function interopDefault<T>(mod: unknown): T {
  let m = mod as { default?: unknown } | undefined;
  for (let i = 0; i < 3 && m && typeof m === "object" && "default" in m; i++) {
    m = m.default as { default?: unknown };
  }
  return m as T;
}
