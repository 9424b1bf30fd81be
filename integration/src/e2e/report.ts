import type { FleetEvent } from "./aggregator-fleet.js";
import type { InjectedFault } from "./faults.js";

/** One invariant of the run, expected against actual. */
export interface Invariant {
  name: string;
  expected: number | string;
  actual: number | string;
  ok: boolean;
  detail?: string;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/**
 * The report of an end-to-end run: the faults injected (what, when), what
 * happened to the aggregator instances, and each invariant checked.
 *
 * @param r - seed, faults, fleet events, invariants
 * @returns printable text
 */
export function formatReport(r: {
  seed: number;
  startMs: number;
  faults: readonly InjectedFault[];
  fleet: readonly FleetEvent[];
  invariants: readonly Invariant[];
  timings: Record<string, number>;
}): string {
  const faults = table(
    ["#", "fault", "from", "to", "detail"],
    r.faults.map((f, i) => [String(i + 1), f.kind, secs(f.startMs), secs(f.endMs), f.detail]),
  );
  const fleet = table(
    ["at", "instance", "event"],
    r.fleet.map((e) => [secs(e.atMs), String(e.slot), e.what.slice(0, 160)]),
  );
  const checks = table(
    ["", "invariant", "expected", "actual"],
    r.invariants.map((c) => [c.ok ? "ok" : "FAIL", c.name, String(c.expected), String(c.actual)]),
  );
  const failures = r.invariants
    .filter((c) => !c.ok && c.detail)
    .map((c) => `${c.name}:\n${c.detail}`)
    .join("\n");
  const timings = Object.entries(r.timings)
    .map(([k, v]) => `${k} ${secs(v)}`)
    .join(", ");
  return [
    `\n=== end-to-end fault run, seed ${r.seed} (rerun: SLUICE_E2E_SEED=${r.seed} SLUICE_E2E_START_MS=${r.startMs} npm run test:e2e)`,
    `timings: ${timings}`,
    "\nfaults injected",
    faults,
    "\naggregator instances",
    fleet,
    "\ninvariants",
    checks,
    failures ? `\nfirst differences\n${failures}` : "",
  ].join("\n");
}
