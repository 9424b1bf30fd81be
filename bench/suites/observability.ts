// `npm run bench -- observability [--events N] [--rounds R]`
// @sluice/observability against raw prom-client, measured in the same run:
//   - instrumentation cost per event: a library publishing one
//     `sluice:sink:batch` message on diagnostics_channel that createMetrics
//     turns into counters and a histogram, vs the same updates made by hand
//     with prom-client (ratios.channel_vs_raw_prom_client);
//   - cost of a publish site nobody listens to (hasSubscribers check) vs an
//     empty loop;
//   - /metrics rendering of a registry with many label sets: our renderer
//     (Prometheus text and OpenMetrics) vs prom-client's registry.metrics()
//     (ratios.render_*_vs_prom_client).
import diagnostics_channel from "node:diagnostics_channel";
import { Counter, Histogram, Registry } from "prom-client";
import { channels, createMetrics } from "../../packages/observability/src/index.js";
import { render } from "../../packages/observability/src/internal/exposition.js";
import { median, numberArg, trackPeakRss, writeResults } from "./_harness.js";

const N = numberArg("events", 1_000_000);
const ROUNDS = Math.max(3, numberArg("rounds", 5));
const SINKS = 20;
const names = Array.from({ length: SINKS }, (_, i) => `sink-${i}`);
const nsPerOp = (ms: number, n: number) => (ms * 1e6) / n;

function rawPromClient(): number {
  const registry = new Registry();
  const rows = new Counter({
    name: "raw_rows_total",
    help: "h",
    labelNames: ["sink", "name"],
    registers: [registry],
  });
  const bytes = new Counter({
    name: "raw_bytes_total",
    help: "h",
    labelNames: ["sink", "name"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "raw_batch_duration_seconds",
    help: "h",
    labelNames: ["sink", "name"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const t = performance.now();
  for (let i = 0; i < N; i++) {
    const labels = { sink: "clickhouse", name: names[i % SINKS]! };
    duration.observe(labels, (i % 50) / 1000);
    rows.inc(labels, 100);
    bytes.inc(labels, 4096);
  }
  return nsPerOp(performance.now() - t, N);
}

function viaChannel(): number {
  const registry = new Registry();
  const metrics = createMetrics({ registry });
  const ch = diagnostics_channel.channel(channels.sinkBatch);
  const t = performance.now();
  for (let i = 0; i < N; i++) {
    if (ch.hasSubscribers) {
      ch.publish({
        sink: "clickhouse",
        name: names[i % SINKS]!,
        rows: 100,
        bytes: 4096,
        durationMs: i % 50,
      });
    }
  }
  const ns = nsPerOp(performance.now() - t, N);
  void metrics.close();
  return ns;
}

function unsubscribedPublish(): { site: number; empty: number } {
  const ch = diagnostics_channel.channel("sluice:bench:nobody");
  let sink = 0;
  let t = performance.now();
  for (let i = 0; i < N; i++) {
    if (ch.hasSubscribers) ch.publish({ i });
    sink += i & 1;
  }
  const site = nsPerOp(performance.now() - t, N);
  t = performance.now();
  for (let i = 0; i < N; i++) sink += i & 1;
  const empty = nsPerOp(performance.now() - t, N);
  if (sink < 0) console.log(sink);
  return { site, empty };
}

async function renderRound(): Promise<{
  ours: number;
  oursOm: number;
  promClient: number;
  series: number;
}> {
  const registry = new Registry();
  const metrics = createMetrics({ registry, maxLabelValues: 1000 });
  // a busy process: 64 partitions × 3 topics of consumer metrics, 20 sinks, 10 stores
  for (let p = 0; p < 64; p++) {
    for (const topic of ["events", "clicks", "orders"]) {
      diagnostics_channel
        .channel(channels.jobRecords)
        .publish({ applicationId: "agg", topic, partition: p, count: 10 });
      diagnostics_channel
        .channel(channels.jobLag)
        .publish({ applicationId: "agg", topic, partition: p, lag: p });
    }
    diagnostics_channel
      .channel(channels.jobStreamTime)
      .publish({ applicationId: "agg", partition: p, streamTime: Date.now() });
  }
  for (const name of names) {
    diagnostics_channel
      .channel(channels.sinkBatch)
      .publish({ sink: "redis", name, rows: 1, bytes: 1, durationMs: 3 });
  }
  const reps = Math.max(5, Math.round(N / 20_000));
  const time = async (fn: () => Promise<string>) => {
    await fn();
    const t = performance.now();
    for (let i = 0; i < reps; i++) await fn();
    return (performance.now() - t) / reps;
  };
  const ours = await time(() => render(registry, "prometheus"));
  const oursOm = await time(() => render(registry, "openmetrics"));
  const promClient = await time(() => registry.metrics());
  const series = (await render(registry, "prometheus"))
    .split("\n")
    .filter((l) => l && !l.startsWith("#")).length;
  await metrics.close();
  return { ours, oursOm, promClient, series };
}

const rss = trackPeakRss();
const raw: number[] = [];
const chan: number[] = [];
const site: number[] = [];
const empty: number[] = [];
const ours: number[] = [];
const oursOm: number[] = [];
const pc: number[] = [];
let series = 0;
for (let r = 0; r < ROUNDS; r++) {
  raw.push(rawPromClient());
  chan.push(viaChannel());
  const u = unsubscribedPublish();
  site.push(u.site);
  empty.push(u.empty);
  const rr = await renderRound();
  ours.push(rr.ours);
  oursOm.push(rr.oursOm);
  pc.push(rr.promClient);
  series = rr.series;
  console.error(
    `round ${r + 1}/${ROUNDS}: raw ${raw.at(-1)!.toFixed(0)} ns, channel ${chan.at(-1)!.toFixed(0)} ns, render ${rr.ours.toFixed(2)} ms vs ${rr.promClient.toFixed(2)} ms`,
  );
}
writeResults("observability", {
  params: { events: N, rounds: ROUNDS, sinks: SINKS, renderedSeries: series },
  medians: {
    raw_prom_client_ns_per_event: median(raw),
    channel_to_metrics_ns_per_event: median(chan),
    unsubscribed_publish_site_ns: median(site),
    empty_loop_ns: median(empty),
    render_prometheus_ms: median(ours),
    render_openmetrics_ms: median(oursOm),
    prom_client_metrics_ms: median(pc),
  },
  ratios: {
    channel_vs_raw_prom_client: median(chan) / median(raw),
    render_prometheus_vs_prom_client: median(ours) / median(pc),
    render_openmetrics_vs_prom_client: median(oursOm) / median(pc),
  },
  peakRssMiB: Math.round(rss.stop() / 2 ** 20),
  note: "ns per event and ms per render are medians of the rounds; ratios > 1 mean slower than raw prom-client",
});
