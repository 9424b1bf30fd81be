// Pure helpers of the peers benchmark: the deterministic event stream, its
// ground truth (count and sum per user and one-minute window), the parsing of
// each engine's output records into one shape, and the comparison that proves
// every engine produced exactly the ground truth.

/** One input event (JSON on the input topic, keyed by `user_id`). */
export interface BenchEvent {
  event_id: string;
  user_id: string;
  type: string;
  page: string;
  ts: number;
  amount: number;
}

/** A final window result, normalized across engines. */
export interface WindowRow {
  key: string;
  start: number;
  end: number;
  count: number;
  sum: number;
}

/** The engines compared. */
export type Engine = "sluice" | "kafka-streams" | "quix";

export const WINDOW_MS = 60_000;
/** Key of the per-partition end markers that advance stream time past the last window. */
export const END_KEY = "__end__";

const TYPES = ["page_view", "click", "add_to_cart", "purchase"] as const;

/** mulberry32: a small seeded PRNG, so every run produces the same events. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Event `i` of `n`: users drawn uniformly from `users`, event time spread
 * evenly over `spanMs` from `t0` (non-decreasing, so no engine sees late
 * records), amounts in integer cents 1..1000.
 */
export function makeEvent(
  i: number,
  n: number,
  opts: { t0: number; spanMs: number; users: number; rand: () => number },
): BenchEvent {
  const u = Math.floor(opts.rand() * opts.users);
  const r = opts.rand();
  return {
    event_id: `e${i}`,
    user_id: `u${u.toString().padStart(6, "0")}`,
    type: TYPES[Math.floor(r * TYPES.length)]!,
    page: `/p/${Math.floor(r * 1000)}`,
    ts: opts.t0 + Math.floor((i * opts.spanMs) / n),
    amount: 1 + Math.floor(opts.rand() * 1000),
  };
}

/** Ground truth: adds events one by one into `(key, window) → row`. */
export class GroundTruth {
  readonly rows = new Map<string, WindowRow>();

  add(e: Pick<BenchEvent, "user_id" | "ts" | "amount">): void {
    const start = e.ts - (e.ts % WINDOW_MS);
    const id = rowId(e.user_id, start, start + WINDOW_MS);
    const row = this.rows.get(id);
    if (row) {
      row.count += 1;
      row.sum += e.amount;
    } else {
      this.rows.set(id, {
        key: e.user_id,
        start,
        end: start + WINDOW_MS,
        count: 1,
        sum: e.amount,
      });
    }
  }
}

export function rowId(key: string, start: number, end: number): string {
  return `${key}|${start}|${end}`;
}

/**
 * Parses one output record of an engine into a {@link WindowRow}, or returns
 * undefined for a record that is not a window result of a user (end markers).
 * Shapes: Kafka Streams `{key,start,end,count,sum}` (written by our program),
 * Quix `{start,end,count,sum}` keyed by the user, Sluice a `WindowResult`
 * `{key,windowStart,windowEnd,value:{count,sum},...}`.
 *
 * @throws Error when the value is not JSON of the engine's shape
 */
export function parseOutput(
  engine: Engine,
  key: string | undefined,
  value: string,
): WindowRow | undefined {
  const v = JSON.parse(value) as Record<string, unknown>;
  let row: WindowRow;
  if (engine === "sluice") {
    const agg = (v.value ?? {}) as Record<string, unknown>;
    row = {
      key: String(v.key ?? key),
      start: Number(v.windowStart),
      end: Number(v.windowEnd),
      count: Number(agg.count),
      sum: Number(agg.sum),
    };
  } else {
    row = {
      key: String(v.key ?? key),
      start: Number(v.start),
      end: Number(v.end),
      count: Number(v.count),
      sum: Number(v.sum),
    };
  }
  if (row.key === END_KEY) return undefined;
  for (const f of ["start", "end", "count", "sum"] as const) {
    if (!Number.isFinite(row[f])) {
      throw new Error(`${engine} output has no numeric ${f}: ${value}`);
    }
  }
  return row;
}

/** What {@link compareRows} found. */
export interface Comparison {
  ok: boolean;
  expected: number;
  received: number;
  missing: number;
  extra: number;
  duplicates: number;
  mismatched: number;
  /** Up to five examples of each problem, for the report. */
  examples: string[];
}

/**
 * Compares an engine's rows with the ground truth: every expected (key,
 * window) exactly once with the same count and sum, nothing else.
 */
export function compareRows(
  expected: ReadonlyMap<string, WindowRow>,
  actual: readonly WindowRow[],
): Comparison {
  const seen = new Map<string, WindowRow>();
  let duplicates = 0;
  let extra = 0;
  let mismatched = 0;
  const examples: string[] = [];
  const note = (s: string) => {
    if (examples.length < 5) examples.push(s);
  };
  for (const row of actual) {
    const id = rowId(row.key, row.start, row.end);
    if (seen.has(id)) {
      duplicates += 1;
      note(`duplicate ${id}`);
      continue;
    }
    seen.set(id, row);
    const want = expected.get(id);
    if (!want) {
      extra += 1;
      note(`extra ${id} count=${row.count} sum=${row.sum}`);
    } else if (want.count !== row.count || want.sum !== row.sum) {
      mismatched += 1;
      note(`mismatch ${id}: want ${want.count}/${want.sum}, got ${row.count}/${row.sum}`);
    }
  }
  let missing = 0;
  for (const id of expected.keys()) {
    if (!seen.has(id)) {
      missing += 1;
      note(`missing ${id}`);
    }
  }
  return {
    ok: missing === 0 && extra === 0 && duplicates === 0 && mismatched === 0,
    expected: expected.size,
    received: actual.length,
    missing,
    extra,
    duplicates,
    mismatched,
    examples,
  };
}

/** A stable digest input: the rows sorted by id, one `id count sum` line each. */
export function canonicalLines(rows: readonly WindowRow[]): string {
  return rows
    .map((r) => `${rowId(r.key, r.start, r.end)} ${r.count} ${r.sum}`)
    .sort()
    .join("\n");
}

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of an empty list");
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}
