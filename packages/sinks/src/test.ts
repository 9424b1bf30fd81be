import { describe, it } from "vitest";
import { type SinkConformanceOptions, sinkConformanceCases } from "./conformance.js";

export * from "./conformance.js";

/**
 * Registers the sink conformance suite with vitest: one `describe` block with
 * one test per case. Call it at the top level of a test file.
 *
 * @typeParam R - the record type
 * @param options - how to make sinks and records and read the destination back
 * @returns nothing; registers tests
 * @throws nothing itself; failing cases fail their tests
 * @example
 * ```ts
 * import { runSinkConformance } from "@sluice/sinks/test";
 *
 * runSinkConformance({
 *   makeSink: (hints) => createMySink({ ...hints }),
 *   makeRecords: (n, start) => Array.from({ length: n }, (_, i) => ({ id: `r${start + i}` })),
 *   identity: (r) => r.id,
 *   readBack: () => readIdsFromMyStore(),
 *   reset: () => truncateMyStore(),
 * });
 * ```
 * @since 0.1.0
 */
export function runSinkConformance<R>(options: SinkConformanceOptions<R>): void {
  describe(options.name ?? "sink conformance", () => {
    for (const c of sinkConformanceCases(options)) {
      it(c.name, () => c.run(), options.timeoutMs ?? 60_000);
    }
  });
}
