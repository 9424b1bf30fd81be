import { byCountThenPage, type GroundTruth } from "../generator/ground-truth.js";
import { EVENT_TYPES } from "../generator/user-event.js";
import { type PipelineConfig, redisKeys } from "./config.js";
import type { Check, PipelineResults } from "./results.js";

const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");
const fmt = (n: number) => n.toLocaleString("en-US");
const money = (cents: number) =>
  `$${(cents / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)]
    .map((l) => `  ${l}`)
    .join("\n");
}

/**
 * Prints the demo's report: what ClickHouse and Redis hold (top pages,
 * sessions, per-minute counts, DLQ and late counts), every check against the
 * ground truth with the verdict, and where to look.
 *
 * @param r - deployment, truth, results and checks
 * @returns whether every check passed
 */
export function printReport(r: {
  config: PipelineConfig;
  truth: GroundTruth;
  results: PipelineResults;
  checks: Check[];
  ttl: boolean;
  elapsed: string;
}): boolean {
  const { config: c, truth, results, checks } = r;
  const out: string[] = [];
  const h = (title: string) => out.push("", title, "=".repeat(title.length));

  h("Top pages (Redis leaderboards, hopping 5-minute windows advancing by 1 minute)");
  const views = new Map<number, number>();
  for (const w of results.pageWindows) {
    views.set(w.window_start, (views.get(w.window_start) ?? 0) + w.count);
  }
  const busiest = [...views.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
  if (busiest) {
    const [start, total] = busiest;
    out.push(
      `  busiest window ${iso(start)} .. ${iso(start + c.windows.hopSizeMs)}: ${fmt(total)} views`,
      `  (key ${redisKeys.topPages(c, start)}; ${fmt(views.size)} windows in all)`,
    );
    const top = results.pageWindows
      .filter((w) => w.window_start === start)
      .sort(byCountThenPage)
      .slice(0, c.topN);
    out.push(
      table(
        ["page", "views"],
        top.map((p) => [p.page, fmt(p.count)]),
      ),
    );
  } else {
    out.push("  (no leaderboard found)");
  }

  h(`Sessions (ClickHouse ${c.tables.sessions}, 30-minute inactivity gap)`);
  const s = results.sessions;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  if (s.length > 0) {
    out.push(
      `  ${fmt(s.length)} sessions of ${fmt(new Set(s.map((x) => x.user_id)).size)} users; ` +
        `average ${(sum(s.map((x) => x.duration_ms)) / s.length / 60_000).toFixed(1)} min, ` +
        `${(sum(s.map((x) => x.events)) / s.length).toFixed(1)} events; ` +
        `revenue ${money(sum(s.map((x) => x.revenue_cents)))}`,
    );
    const top = [...s].sort((a, b) => b.revenue_cents - a.revenue_cents).slice(0, 5);
    out.push(
      table(
        ["user", "start", "minutes", "events", "revenue"],
        top.map((x) => [
          x.user_id,
          iso(x.session_start),
          (x.duration_ms / 60_000).toFixed(1),
          x.events,
          money(x.revenue_cents),
        ]),
      ),
    );
  } else {
    out.push("  (no sessions found)");
  }

  h(
    `Events per minute (ClickHouse ${c.tables.minuteCounts}; Redis ${redisKeys.minuteCounts(c, 0).slice(0, -1)}<minute>)`,
  );
  const byMinute = new Map<number, Record<string, number>>();
  for (const m of results.minuteCounts) {
    const row = byMinute.get(m.window_start) ?? {};
    row[m.type] = m.count;
    byMinute.set(m.window_start, row);
  }
  const minutes = [...byMinute.keys()].sort((a, b) => a - b);
  const totals = Object.fromEntries(
    EVENT_TYPES.map((t) => [
      t,
      sum(results.minuteCounts.filter((m) => m.type === t).map((m) => m.count)),
    ]),
  );
  out.push(`  ${fmt(minutes.length)} minutes; last five:`);
  out.push(
    table(
      ["minute", ...EVENT_TYPES],
      [
        ...minutes
          .slice(-5)
          .map((m) => [iso(m), ...EVENT_TYPES.map((t) => fmt(byMinute.get(m)![t] ?? 0))]),
        ["total", ...EVENT_TYPES.map((t) => fmt(totals[t] ?? 0))],
      ],
    ),
  );

  h(
    `Funnel per hour (ClickHouse ${c.tables.funnelHourly} over ${c.tables.funnel}; page view -> cart -> purchase within ${c.windows.funnelWithinMs / 60_000} min)`,
  );
  const hourOfMinute = (ms: number) => Math.floor(ms / 3_600_000) * 3_600_000;
  const events = new Map<number, Record<string, number>>();
  for (const m of results.minuteCounts) {
    const row = events.get(hourOfMinute(m.window_start)) ?? {};
    row[m.type] = (row[m.type] ?? 0) + m.count;
    events.set(hourOfMinute(m.window_start), row);
  }
  const funnelByHour = new Map(results.funnelHours.map((f) => [f.hour, f]));
  const hours = [...new Set([...events.keys(), ...funnelByHour.keys()])].sort((a, b) => a - b);
  const pct = (n: number, of: number) => (of > 0 ? `${((100 * n) / of).toFixed(1)}%` : "-");
  const funnelRows = hours.map((hr) => {
    const e = events.get(hr) ?? {};
    const f = funnelByHour.get(hr) ?? { converted: 0, abandoned: 0, revenue_cents: 0 };
    return {
      hour: hr,
      views: e.page_view ?? 0,
      carts: e.add_to_cart ?? 0,
      purchases: e.purchase ?? 0,
      ...f,
    };
  });
  const total = (
    k: "views" | "carts" | "purchases" | "converted" | "abandoned" | "revenue_cents",
  ) => sum(funnelRows.map((x) => x[k]));
  const shown = funnelRows.slice(-24);
  if (funnelRows.length > shown.length) out.push(`  ${fmt(funnelRows.length)} hours; last 24:`);
  out.push(
    table(
      ["hour", "views", "carts", "purchases", "converted", "abandoned", "conversion", "revenue"],
      [
        ...shown.map((x) => [
          iso(x.hour),
          fmt(x.views),
          fmt(x.carts),
          fmt(x.purchases),
          fmt(x.converted),
          fmt(x.abandoned),
          pct(x.converted, x.converted + x.abandoned),
          money(x.revenue_cents),
        ]),
        [
          "total",
          fmt(total("views")),
          fmt(total("carts")),
          fmt(total("purchases")),
          fmt(total("converted")),
          fmt(total("abandoned")),
          pct(total("converted"), total("converted") + total("abandoned")),
          money(total("revenue_cents")),
        ],
      ],
    ),
    "  views, carts, purchases: events of the hour (from the per-minute counts); converted, abandoned:",
    "  matches whose page view falls in the hour; conversion = converted / (converted + abandoned)",
  );
  const funnelChecks = checks.filter((x) => x.name.includes("funnel"));
  out.push(
    `  against the generator's ground truth (${fmt(truth.funnel.matches.length)} matches, ${fmt(truth.funnel.late)} late for the funnel): ` +
      (funnelChecks.length > 0 && funnelChecks.every((x) => x.ok)
        ? "PASS, every match and every hour exact"
        : `FAIL (${funnelChecks
            .filter((x) => !x.ok)
            .map((x) => x.name)
            .join("; ")})`),
  );

  h("Dead letters and late events");
  const dlq = checks.filter((x) => x.name.startsWith("DLQ of"));
  const late = checks.filter((x) => x.name.startsWith("late records"));
  out.push(
    table(
      ["job", "dead-lettered", "late (beyond grace)"],
      dlq.map((d, i) => [
        d.name.replace("DLQ of ", "").replace(" = invalid records", ""),
        d.actual,
        late[i]?.actual ?? "-",
      ]),
    ),
    `  generator sent ${fmt(truth.totals.invalid)} invalid and ${fmt(truth.totals.late)} late records; ` +
      `raw events in ClickHouse ${c.tables.events}: ${fmt(results.rawEvents)}`,
  );

  h("Checks against the generator's ground truth");
  out.push(
    table(
      ["check", "expected", "actual", "result"],
      checks.map((x) => [x.name, x.expected, x.actual, x.ok ? "PASS" : "FAIL"]),
    ),
  );
  for (const x of checks.filter((y) => !y.ok && y.detail)) {
    out.push(`  ${x.name}:\n${x.detail!.replace(/^/gm, "    ")}`);
  }
  const ok = checks.every((x) => x.ok);
  out.push(
    "",
    ok
      ? `VERDICT: PASS — every ClickHouse aggregate and Redis counter equals the ground truth (${r.elapsed})`
      : `VERDICT: FAIL — ${checks.filter((x) => !x.ok).length} of ${checks.length} checks failed (${r.elapsed})`,
  );

  h("Where to look");
  out.push(
    `  ClickHouse (${c.clickhouseUrl}): SELECT * FROM ${c.tables.sessions} FINAL ORDER BY revenue_cents DESC LIMIT 10`,
    `             SELECT * FROM ${c.tables.minuteCounts} FINAL ORDER BY window_start DESC LIMIT 20`,
    `             SELECT * FROM ${c.tables.funnelHourly} ORDER BY hour; SELECT * FROM ${c.tables.funnel} FINAL LIMIT 10`,
    `             SELECT type, count() FROM ${c.tables.events} FINAL GROUP BY type` +
      (r.ttl ? ` (TTL ${c.hotTierDays} days)` : ""),
    `  Redis (${c.redisUrl}): ZREVRANGE ${redisKeys.topPages(c, busiest?.[0] ?? 0)} 0 9 WITHSCORES`,
    `             HGETALL ${redisKeys.minuteCounts(c, minutes.at(-1) ?? 0)}; SUBSCRIBE ${redisKeys.topPagesChannel(c)}`,
    `  Kafka: topic ${c.topic}; dead letters in <job>-dlq, late events in <job>-late (jobs: ${Object.values(
      c.applications,
    )
      .filter((a) => a !== c.applications.raw)
      .join(", ")})`,
    "  Metrics while the services run: producer http://127.0.0.1:9464/metrics, aggregator http://127.0.0.1:9465/metrics (/healthz, /readyz)",
    "  Run them yourself (sources, no build): export TSX_TSCONFIG_PATH=integration/tsconfig.json;",
    "    npx tsx integration/src/bin/aggregator.ts   and   npx tsx integration/src/bin/producer.ts --events 100000",
  );
  console.log(out.join("\n"));
  return ok;
}
