/** Retry policy after defaults are applied. */
export interface ResolvedRetry {
  initialDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
  multiplier: number;
}

/**
 * Exponential backoff with "full jitter": a uniformly random delay in
 * [base/2, base], base = initial × multiplier^(attempt-1), capped.
 * `slowdown` multiplies the base (used for TOO_MANY_PARTS).
 */
export function backoffDelay(
  policy: ResolvedRetry,
  attempt: number,
  slowdown = 1,
  random: () => number = Math.random,
): number {
  const base = Math.min(
    policy.maxDelayMs,
    policy.initialDelayMs * slowdown * policy.multiplier ** Math.max(0, attempt - 1),
  );
  return Math.round(base / 2 + (random() * base) / 2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
