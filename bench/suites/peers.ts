// Peers benchmark: the same windowed job on Sluice, Kafka Streams and Quix
// Streams, on the same broker, in the same run.
//
// The job: per user (the record key), tumbling one-minute windows with no
// grace, count of events and sum of `amount`, final results only, exactly-once
// (Kafka transactions; results read back with read_committed), local state
// (Sluice LevelDB + changelog, Kafka Streams RocksDB + changelog, Quix
// RocksDB + changelog), event time from the `ts` field, commit interval 100 ms
// for all three (Kafka Streams' exactly-once default; set explicitly on Quix).
//
//   1. Pre-produces N events (default 1,000,000; `--events N` to shrink) once
//      with raw kafkajs into a 12-partition topic, plus one end marker per
//      partition that moves stream time past the last window.
//   2. Per round (`--rounds R`, at least 3), each engine in rotating order,
//      with a fresh application id and output topic: throughput from its first
//      processed record until every expected result is readable
//      (read_committed), CPU seconds of the engine process (/proc), peak RSS
//      (VmHWM); the output is compared with the ground truth computed here.
//      A raw kafkajs consumer reading and JSON-parsing the same input is the
//      baseline measured in the same round.
//   3. Per round and engine: end-to-end latency at a fixed rate (`--rate`,
//      default 2,000 events/s, `--latency-seconds`, default 20) on a fresh
//      live topic; event time runs 60× faster than the wall clock so a
//      one-minute window closes every second; latency = time the final result
//      is readable − time the record that closed its window was produced.
//
// `npm run bench -- peers [--events N] [--rounds R] [--rate R] [--latency-seconds S]
//   [--engines sluice,kafka-streams,quix] [--profile]`
// `--profile` runs the Sluice process with --cpu-prof (profiles in .sluice/peers/).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import kafkajs from "kafkajs";
import {
  type BenchEvent,
  canonicalLines,
  compareRows,
  END_KEY,
  type Engine,
  GroundTruth,
  makeEvent,
  parseOutput,
  percentile,
  prng,
  WINDOW_MS,
  type WindowRow,
} from "../peers/verify.js";
import { median, numberArg, writeResults } from "./_harness.js";

const { Kafka, logLevel } = kafkajs;
type KafkaAdmin = ReturnType<InstanceType<typeof Kafka>["admin"]>;

const root = fileURLToPath(new URL("../../", import.meta.url));
const work = path.join(root, ".sluice", "peers");
const ksDir = path.join(root, "bench", "peers", "kafka-streams");
const venv = path.join(root, ".sluice", "venv-quix");
const QUIX_VERSION = "3.28.1";
const CONFLUENT_KAFKA_VERSION = "2.12.2";

const EVENTS = Math.round(numberArg("events", 1_000_000));
const ROUNDS = Math.max(3, Math.round(numberArg("rounds", 3)));
const RATE = Math.round(numberArg("rate", 2_000));
const LATENCY_SECONDS = numberArg("latency-seconds", 20);
const PARTITIONS = 12;
const COMMIT_MS = 100;
const USERS = Math.max(100, Math.round(EVENTS / 200)); // ~10 events per user-minute
const SPAN_MS = 20 * WINDOW_MS; // 20 event-minutes of data
const LIVE_USERS = 200; // ~10 events per user-window at 2,000 events/s, as in the throughput phase
const SPEED = 60; // event-time ms per wall ms in the latency phase
const PROFILE = process.argv.includes("--profile");
const ALL_ENGINES: Engine[] = ["sluice", "kafka-streams", "quix"];
const enginesArg = process.argv.indexOf("--engines");
const ENGINES: Engine[] =
  enginesArg >= 0
    ? (process.argv[enginesArg + 1] ?? "")
        .split(",")
        .filter((e): e is Engine => (ALL_ENGINES as string[]).includes(e))
    : ALL_ENGINES;
if (ENGINES.length === 0) throw new Error(`--engines takes a list of ${ALL_ENGINES.join(",")}`);

const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim());
const kafka = new Kafka({ clientId: "sluice-bench-peers", brokers, logLevel: logLevel.NOTHING });
const runId = `peers-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK =
  Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

function log(msg: string): void {
  console.log(`[peers ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

// ------------------------------------------------------------------ setup

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? root, encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return `${r.stdout}${r.stderr}`;
}

/** Compiles the Kafka Streams program and copies its runtime classpath (Maven repo under .sluice/m2). */
function buildKafkaStreams(): void {
  const jar = path.join(ksDir, "target", "peers-kafka-streams-0.jar");
  const src = path.join(ksDir, "src", "main", "java", "dev", "sluice", "bench", "PeersJob.java");
  const pom = path.join(ksDir, "pom.xml");
  const fresh =
    fs.existsSync(jar) &&
    fs.existsSync(path.join(ksDir, "target", "lib")) &&
    fs.statSync(jar).mtimeMs > Math.max(fs.statSync(src).mtimeMs, fs.statSync(pom).mtimeMs);
  if (fresh) return;
  log("building the Kafka Streams program with Maven ...");
  fs.rmSync(path.join(ksDir, "target", "lib"), { recursive: true, force: true });
  run(
    "mvn",
    [
      "-B",
      "-q",
      `-Dmaven.repo.local=${path.join(root, ".sluice", "m2")}`,
      "package",
      "dependency:copy-dependencies",
      "-DoutputDirectory=target/lib",
      "-DincludeScope=runtime",
    ],
    { cwd: ksDir },
  );
}

/** Creates the Quix virtualenv with pinned versions (confluent-kafka's manylinux wheel bundles librdkafka). */
function buildQuixVenv(): void {
  const python = path.join(venv, "bin", "python");
  const marker = path.join(venv, `.sluice-quix-${QUIX_VERSION}-ck-${CONFLUENT_KAFKA_VERSION}`);
  if (fs.existsSync(marker)) return;
  log(`creating ${path.relative(root, venv)} with quixstreams==${QUIX_VERSION} ...`);
  if (!fs.existsSync(python)) run("python3", ["-m", "venv", venv]);
  run(python, [
    "-m",
    "pip",
    "install",
    "-q",
    "--only-binary",
    "confluent-kafka",
    `quixstreams==${QUIX_VERSION}`,
    `confluent-kafka==${CONFLUENT_KAFKA_VERSION}`,
  ]);
  fs.writeFileSync(marker, new Date().toISOString());
}

function versions(): Record<string, string> {
  const libs = fs.readdirSync(path.join(ksDir, "target", "lib"));
  const jarVersion = (prefix: string) =>
    libs.find((f) => f.startsWith(prefix))?.slice(prefix.length, -4) ?? "?";
  const java = run("java", ["-version"]).split("\n")[0] ?? "?";
  const py = run(path.join(venv, "bin", "python"), [
    "-c",
    "import sys, confluent_kafka, importlib.metadata as m; print(sys.version.split()[0], m.version('quixstreams'), confluent_kafka.version(), confluent_kafka.libversion()[0])",
  ])
    .trim()
    .split(" ");
  const pkg = (name: string) =>
    JSON.parse(fs.readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8"))
      .version as string;
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], {
    cwd: root,
    encoding: "utf8",
  });
  const dirty = spawnSync("git", ["status", "--porcelain", "--", "packages"], {
    cwd: root,
    encoding: "utf8",
  }).stdout.trim();
  return {
    sluice: `@sluice/windowing from source at ${commit.stdout.trim() || "?"}${dirty ? " plus uncommitted changes in packages/" : ""}`,
    node: process.version,
    kafkajs: pkg("kafkajs"),
    classicLevel: pkg("classic-level"),
    kafkaStreams: jarVersion("kafka-streams-"),
    rocksdbjni: jarVersion("rocksdbjni-"),
    java: java.trim(),
    python: py[0] ?? "?",
    quixstreams: py[1] ?? "?",
    confluentKafka: py[2] ?? "?",
    librdkafka: py[3] ?? "?",
    broker: "Apache Kafka 3.9.1 (KRaft, single broker, loopback)",
  };
}

// ------------------------------------------------------------------ topics

async function createTopic(admin: KafkaAdmin, topic: string): Promise<void> {
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } catch {
    // the broker may answer slowly while other topics are being deleted;
    // the metadata check below decides
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const parts = topics[0]?.partitions ?? [];
      if (parts.length === PARTITIONS && parts.every((p) => p.leader >= 0)) return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`topic ${topic} has no leaders after 30 s`);
    await sleep(200);
  }
}

/** Deletes every topic whose name contains `marker`, and the given groups. */
async function cleanup(admin: KafkaAdmin, marker: string, groups: string[]): Promise<void> {
  try {
    const topics = (await admin.listTopics()).filter((t) => t.includes(marker));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
  } catch (err) {
    log(`topic cleanup for ${marker} failed: ${(err as Error).message}`);
  }
  // a group whose last member is still leaving cannot be deleted yet: retry a few times
  for (const g of groups) {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await admin.deleteGroups([g]);
        break;
      } catch (err) {
        const codes = ((err as { groups?: { errorCode?: number }[] }).groups ?? []).map(
          (x) => x.errorCode,
        );
        if (codes.length > 0 && codes.every((c) => c === 69)) break; // GROUP_ID_NOT_FOUND
        await sleep(1_000);
      }
    }
  }
}

/**
 * Deletes the run's leftover consumer groups. Kafka Streams does not leave its
 * group on close, so its groups become deletable only after the session
 * timeout (45 s); retry for up to a minute.
 */
async function sweepGroups(admin: KafkaAdmin, marker: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const left = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.includes(marker));
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      log(`consumer groups left on the broker: ${left.join(", ")}`);
      return;
    }
    await admin.deleteGroups(left).catch(() => {});
    await sleep(5_000);
  }
}

// ------------------------------------------------------------------ input

const t0 = Math.floor((Date.now() - 2 * 3_600_000) / WINDOW_MS) * WINDOW_MS;

/** Produces the events once and returns the ground truth. */
async function preProduce(topic: string): Promise<{ truth: GroundTruth; ms: number }> {
  const truth = new GroundTruth();
  const rand = prng(42);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const start = performance.now();
  // one request at a time: concurrent requests could reorder a partition's records
  const chunk = 10_000;
  for (let i = 0; i < EVENTS; i += chunk) {
    const messages = [];
    for (let j = i; j < Math.min(EVENTS, i + chunk); j++) {
      const e = makeEvent(j, EVENTS, { t0, spanMs: SPAN_MS, users: USERS, rand });
      truth.add(e);
      messages.push({ key: e.user_id, value: JSON.stringify(e), timestamp: String(e.ts) });
    }
    await producer.send({ topic, acks: -1, messages });
  }
  await sendEndMarkers(producer, topic, t0 + SPAN_MS + 2 * WINDOW_MS);
  const ms = performance.now() - start;
  await producer.disconnect();
  return { truth, ms };
}

/** One record per partition, far enough in event time to close every window before it. */
async function sendEndMarkers(
  producer: ReturnType<InstanceType<typeof Kafka>["producer"]>,
  topic: string,
  ts: number,
): Promise<void> {
  const messages = Array.from({ length: PARTITIONS }, (_, p) => {
    const e: BenchEvent = {
      event_id: `end-${p}`,
      user_id: END_KEY,
      type: "page_view",
      page: "/",
      ts,
      amount: 0,
    };
    return { key: END_KEY, value: JSON.stringify(e), partition: p, timestamp: String(ts) };
  });
  await producer.send({ topic, acks: -1, messages });
}

/** Baseline: a raw kafkajs consumer reading and JSON-parsing the whole input topic. */
async function rawConsume(topic: string, total: number): Promise<number> {
  const groupId = `${runId}-raw-${randomBytes(2).toString("hex")}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let n = 0;
  let first = 0;
  let last = 0;
  let sink = 0;
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        if (first === 0) first = performance.now();
        for (const m of batch.messages) {
          const v = JSON.parse(m.value!.toString("utf8")) as BenchEvent;
          sink += v.amount;
          n += 1;
        }
        if (n >= total) {
          last = performance.now();
          resolve();
        }
      },
    });
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 600_000)))]);
  clearTimeout(timer);
  await consumer.disconnect();
  if (sink < 0 || n < total) throw new Error(`raw consumer read ${n} of ${total}`);
  return (total / (last - first)) * 1000;
}

// ------------------------------------------------------------------ engines

interface Proc {
  engine: Engine;
  child: ChildProcess;
  pid: number;
  spawnedAt: number;
  firstAt: Promise<number>;
  exited: Promise<void>;
  cpuAtFirst?: number;
  stderrFile: string;
}

/** Engine processes still running, killed if the suite is interrupted. */
const live = new Set<ChildProcess>();

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

function peakRssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

function spawnEngine(engine: Engine, env: Record<string, string>): Proc {
  const stateDir = path.join(work, env.PEERS_APP_ID!);
  fs.mkdirSync(stateDir, { recursive: true });
  const full: NodeJS.ProcessEnv = {
    ...process.env,
    ...env,
    PEERS_STATE_DIR: stateDir,
    PEERS_COMMIT_MS: String(COMMIT_MS),
  };
  let cmd: string;
  let args: string[];
  if (engine === "sluice") {
    cmd = process.execPath;
    args = ["--import", "tsx", path.join(root, "bench", "peers", "sluice", "job.ts")];
    if (PROFILE) args.unshift("--cpu-prof", `--cpu-prof-dir=${work}`);
    full.TSX_TSCONFIG_PATH = path.join(root, "bench", "peers", "sluice", "tsconfig.json");
  } else if (engine === "kafka-streams") {
    cmd = "java";
    const cp = [path.join(ksDir, "target", "classes"), path.join(ksDir, "target", "lib", "*")];
    args = ["-cp", cp.join(path.delimiter), "dev.sluice.bench.PeersJob"];
  } else {
    cmd = path.join(venv, "bin", "python");
    args = [path.join(root, "bench", "peers", "quix", "job.py")];
  }
  const stderrFile = path.join(work, `${env.PEERS_APP_ID}.log`);
  const errOut = fs.openSync(stderrFile, "w");
  const child = spawn(cmd, args, { cwd: root, env: full, stdio: ["ignore", "pipe", errOut] });
  fs.closeSync(errOut);
  live.add(child);
  child.once("exit", () => live.delete(child));
  let resolveFirst: (t: number) => void = () => {};
  const firstAt = new Promise<number>((r) => {
    resolveFirst = r;
  });
  const proc: Proc = {
    engine,
    child,
    pid: child.pid!,
    spawnedAt: Date.now(),
    firstAt,
    exited: new Promise((r) => child.once("exit", () => r())),
    stderrFile,
  };
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString("utf8");
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      const m = /^FIRST (\d+)$/.exec(line);
      if (m && proc.cpuAtFirst === undefined) {
        proc.cpuAtFirst = cpuSeconds(proc.pid);
        resolveFirst(Number(m[1]));
      }
      nl = buf.indexOf("\n");
    }
  });
  return proc;
}

async function stopEngine(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const exited = await Promise.race([p.exited.then(() => true), sleep(20_000).then(() => false)]);
  if (!exited) {
    p.child.kill("SIGKILL");
    await p.exited;
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "";
  }
}

/** Reads an engine's output topic (read_committed), noting when each row became readable. */
async function startReader(engine: Engine, topic: string, groupId: string) {
  const rows: { row: WindowRow; at: number }[] = [];
  let parseErrors = 0;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const listeners = new Set<() => void>();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const at = Date.now();
      for (const m of batch.messages) {
        if (!m.value) continue;
        try {
          const row = parseOutput(engine, m.key?.toString("utf8"), m.value.toString("utf8"));
          if (row) rows.push({ row, at });
        } catch {
          parseErrors += 1;
        }
      }
      for (const l of listeners) l();
    },
  });
  return {
    rows,
    get parseErrors() {
      return parseErrors;
    },
    /** Resolves when `pred()` holds, rejects after `timeoutMs` without progress. */
    waitFor(pred: () => boolean, stallMs: number, child: Proc): Promise<void> {
      return new Promise((resolve, reject) => {
        let lastCount = rows.length;
        let lastProgress = Date.now();
        const check = () => {
          if (pred()) {
            clearInterval(timer);
            listeners.delete(check);
            resolve();
          }
        };
        const timer = setInterval(() => {
          if (rows.length !== lastCount) {
            lastCount = rows.length;
            lastProgress = Date.now();
          }
          const dead = child.child.exitCode !== null || child.child.signalCode !== null;
          if (dead || Date.now() - lastProgress > stallMs) {
            clearInterval(timer);
            listeners.delete(check);
            reject(
              new Error(
                `${child.engine} ${dead ? `exited (${child.child.exitCode ?? child.child.signalCode})` : `made no progress for ${stallMs} ms`} with ${rows.length} results:\n${tail(child.stderrFile)}`,
              ),
            );
          }
          check();
        }, 200);
        listeners.add(check);
        check();
      });
    },
    stop: () => consumer.disconnect(),
  };
}

// ------------------------------------------------------------------ runs

/** Starts the output reader, then the engine. */
async function launch(
  engine: Engine,
  appId: string,
  input: string,
  output: string,
  readerGroup: string,
) {
  const reader = await startReader(engine, output, readerGroup);
  const proc = spawnEngine(engine, {
    PEERS_BROKERS: brokers.join(","),
    PEERS_INPUT: input,
    PEERS_OUTPUT: output,
    PEERS_APP_ID: appId,
  });
  return { reader, proc };
}

interface ThroughputRun {
  engine: Engine;
  round: number;
  eventsPerSec: number;
  processingSeconds: number;
  wallSecondsIncludingStartup: number;
  cpuSecondsProcessing: number;
  cpuSecondsTotal: number;
  peakRssMiB: number;
  verified: boolean;
  comparison: ReturnType<typeof compareRows>;
  digest: string;
}

async function throughputRun(
  admin: KafkaAdmin,
  engine: Engine,
  round: number,
  input: string,
  truth: GroundTruth,
): Promise<ThroughputRun> {
  const appId = `${runId}-${engine}-r${round}`;
  const output = `${appId}-out`;
  const readerGroup = `${appId}-reader`;
  await createTopic(admin, output);
  const { reader, proc } = await launch(engine, appId, input, output, readerGroup);
  try {
    const distinct = new Set<string>();
    let counted = 0;
    const complete = () => {
      for (; counted < reader.rows.length; counted++) {
        const r = reader.rows[counted]!.row;
        distinct.add(`${r.key}|${r.start}`);
      }
      return distinct.size >= truth.rows.size;
    };
    await reader.waitFor(complete, 90_000, proc);
    const doneAt = reader.rows[reader.rows.length - 1]!.at;
    const cpuTotal = cpuSeconds(proc.pid);
    const rss = peakRssBytes(proc.pid);
    const firstAt = await proc.firstAt;
    // anything after the last expected row would be a duplicate or an extra
    await sleep(1_500);
    const rows = reader.rows.map((r) => r.row);
    const comparison = compareRows(truth.rows, rows);
    const processingSeconds = (doneAt - firstAt) / 1000;
    return {
      engine,
      round,
      eventsPerSec: EVENTS / processingSeconds,
      processingSeconds,
      wallSecondsIncludingStartup: (doneAt - proc.spawnedAt) / 1000,
      cpuSecondsProcessing: cpuTotal - (proc.cpuAtFirst ?? 0),
      cpuSecondsTotal: cpuTotal,
      peakRssMiB: rss / 2 ** 20,
      verified: comparison.ok && reader.parseErrors === 0,
      comparison,
      digest: createHash("sha256").update(canonicalLines(rows)).digest("hex").slice(0, 16),
    };
  } finally {
    await stopEngine(proc);
    await reader.stop();
    await cleanup(admin, appId, [appId, readerGroup]);
    fs.rmSync(path.join(work, appId), { recursive: true, force: true });
  }
}

interface LatencyRun {
  engine: Engine;
  round: number;
  rate: number;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  verified: boolean;
  comparison: ReturnType<typeof compareRows>;
}

/** Waits until the engine's consumer group has members and is Stable. */
async function waitForGroup(admin: KafkaAdmin, group: string, proc: Proc): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) {
      throw new Error(`${proc.engine} exited before joining:\n${tail(proc.stderrFile)}`);
    }
    const { groups } = await admin.describeGroups([group]);
    const g = groups[0];
    if (g && g.state === "Stable" && g.members.length > 0) return;
    await sleep(250);
  }
  throw new Error(`${proc.engine} did not join group ${group} in 120 s`);
}

async function latencyRun(admin: KafkaAdmin, engine: Engine, round: number): Promise<LatencyRun> {
  const appId = `${runId}-${engine}-lat${round}`;
  const input = `${appId}-in`;
  const output = `${appId}-out`;
  const readerGroup = `${appId}-reader`;
  await createTopic(admin, input);
  await createTopic(admin, output);
  const { reader, proc } = await launch(engine, appId, input, output, readerGroup);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  try {
    await producer.connect();
    await waitForGroup(admin, appId, proc);
    const truth = new GroundTruth();
    const rand = prng(1000 + round);
    const warmupMs = 3_000;
    const w0 = Date.now();
    const tl0 = Math.floor((Date.now() - 3_600_000) / WINDOW_MS) * WINDOW_MS;
    const tsAt = (wall: number) => tl0 + (wall - w0) * SPEED;
    const wallOf = (ts: number) => w0 + (ts - tl0) / SPEED;
    const endAt = w0 + warmupMs + LATENCY_SECONDS * 1000;
    let sent = 0;
    let seq = 0;
    while (Date.now() < endAt) {
      const now = Date.now();
      const due = Math.floor(((now - w0) / 1000) * RATE) - sent;
      if (due > 0) {
        const ts = tsAt(now);
        const messages = [];
        for (let i = 0; i < due; i++) {
          const u = Math.floor(rand() * LIVE_USERS);
          const e: BenchEvent = {
            event_id: `l${seq++}`,
            user_id: `u${u.toString().padStart(6, "0")}`,
            type: "click",
            page: "/live",
            ts,
            amount: 1 + Math.floor(rand() * 1000),
          };
          truth.add(e);
          messages.push({ key: e.user_id, value: JSON.stringify(e), timestamp: String(ts) });
        }
        await producer.send({ topic: input, acks: -1, messages });
        sent += due;
      }
      await sleep(5);
    }
    const lastTs = tsAt(Date.now());
    await sendEndMarkers(producer, input, lastTs + 2 * WINDOW_MS);
    const measuredFrom = tsAt(w0 + warmupMs);
    // windows closed by ordinary records (not by the end markers): ending well before the last event time sent
    const measuredTo = tsAt(endAt - 200);
    const want = (r: WindowRow) => `${r.key}|${r.start}`;
    const have = () => {
      const got = new Set(reader.rows.map((r) => want(r.row)));
      for (const r of truth.rows.values()) if (!got.has(want(r))) return false;
      return true;
    };
    await reader.waitFor(have, 60_000, proc);
    await sleep(1_000);
    const lat: number[] = [];
    for (const { row, at } of reader.rows) {
      if (row.end > measuredFrom && row.end <= measuredTo) lat.push(at - wallOf(row.end));
    }
    const rows = reader.rows.map((r) => r.row);
    const comparison = compareRows(truth.rows, rows);
    return {
      engine,
      round,
      rate: RATE,
      samples: lat.length,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      maxMs: Math.max(...lat),
      verified: comparison.ok && reader.parseErrors === 0,
      comparison,
    };
  } finally {
    await producer.disconnect().catch(() => {});
    await stopEngine(proc);
    await reader.stop();
    await cleanup(admin, appId, [appId, readerGroup]);
    fs.rmSync(path.join(work, appId), { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ main

function summarize(values: number[]): { median: number; rounds: number[] } | null {
  if (values.length === 0) return null;
  const r = (v: number) => Math.round(v * 100) / 100;
  return { median: r(median(values)), rounds: values.map(r) };
}

async function main(): Promise<void> {
  fs.mkdirSync(work, { recursive: true });
  if (ENGINES.includes("kafka-streams")) buildKafkaStreams();
  if (ENGINES.includes("quix")) buildQuixVenv();
  const ver = versions();
  log(`run ${runId}: ${EVENTS} events, ${USERS} users, ${PARTITIONS} partitions, ${ROUNDS} rounds`);
  const admin = kafka.admin();
  await admin.connect();
  const input = `${runId}-input`;
  const onSignal = () => {
    for (const c of live) c.kill("SIGKILL");
    void cleanup(admin, runId, []).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const throughput: ThroughputRun[] = [];
  const latency: LatencyRun[] = [];
  const failures: { engine: Engine; round: number; phase: string; error: string }[] = [];
  const baseline: number[] = [];
  let expectedResults = 0;
  try {
    await createTopic(admin, input);
    const { truth, ms } = await preProduce(input);
    expectedResults = truth.rows.size;
    log(
      `pre-produced ${EVENTS} events in ${(ms / 1000).toFixed(1)} s; ${truth.rows.size} expected results`,
    );
    for (let round = 1; round <= ROUNDS; round++) {
      const order = ENGINES.map((_, i) => ENGINES[(i + round - 1) % ENGINES.length]!);
      baseline.push(await rawConsume(input, EVENTS + PARTITIONS));
      log(`round ${round}: raw kafkajs consume ${Math.round(baseline.at(-1)!)} events/s`);
      for (const engine of order) {
        try {
          const t = await throughputRun(admin, engine, round, input, truth);
          throughput.push(t);
          log(
            `round ${round} ${engine}: ${Math.round(t.eventsPerSec)} events/s, cpu ${t.cpuSecondsProcessing.toFixed(1)} s, rss ${Math.round(t.peakRssMiB)} MiB, verified ${t.verified}${t.verified ? "" : ` ${JSON.stringify(t.comparison)}`}`,
          );
        } catch (err) {
          failures.push({ engine, round, phase: "throughput", error: String(err) });
          log(`round ${round} ${engine} throughput FAILED: ${(err as Error).stack ?? err}`);
        }
      }
      for (const engine of order) {
        try {
          const l = await latencyRun(admin, engine, round);
          latency.push(l);
          log(
            `round ${round} ${engine}: p50 ${Math.round(l.p50Ms)} ms, p99 ${Math.round(l.p99Ms)} ms at ${RATE} events/s (${l.samples} results), verified ${l.verified}${l.verified ? "" : ` ${JSON.stringify(l.comparison)}`}`,
          );
        } catch (err) {
          failures.push({ engine, round, phase: "latency", error: String(err) });
          log(`round ${round} ${engine} latency FAILED: ${(err as Error).stack ?? err}`);
        }
      }
    }
  } finally {
    await cleanup(admin, runId, []);
    await sweepGroups(admin, runId);
    await admin.disconnect();
  }

  const engines: Record<string, unknown> = {};
  for (const engine of ENGINES) {
    const t = throughput.filter((r) => r.engine === engine);
    const l = latency.filter((r) => r.engine === engine);
    engines[engine] = {
      eventsPerSec: summarize(t.map((r) => r.eventsPerSec)),
      cpuSecondsProcessing: summarize(t.map((r) => r.cpuSecondsProcessing)),
      cpuSecondsTotal: summarize(t.map((r) => r.cpuSecondsTotal)),
      cpuMicrosPerEvent: summarize(t.map((r) => (r.cpuSecondsProcessing / EVENTS) * 1e6)),
      peakRssMiB: summarize(t.map((r) => r.peakRssMiB)),
      wallSecondsIncludingStartup: summarize(t.map((r) => r.wallSecondsIncludingStartup)),
      latencyP50Ms: summarize(l.map((r) => r.p50Ms)),
      latencyP99Ms: summarize(l.map((r) => r.p99Ms)),
      latencyMaxMs: summarize(l.map((r) => r.maxMs)),
      verifiedRounds: t.filter((r) => r.verified).length,
      rounds: t.length,
      latencyVerifiedRounds: l.filter((r) => r.verified).length,
      digests: [...new Set(t.map((r) => r.digest))],
    };
  }
  const med = (e: Engine, f: (r: ThroughputRun) => number) => {
    const v = throughput.filter((r) => r.engine === e).map(f);
    return v.length ? median(v) : Number.NaN;
  };
  const medLat = (e: Engine) => {
    const v = latency.filter((r) => r.engine === e).map((r) => r.p99Ms);
    return v.length ? median(v) : Number.NaN;
  };
  const ratio = (a: number, b: number) =>
    Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Math.round((a / b) * 100) / 100 : null;
  const allDigests = new Set(throughput.map((r) => r.digest));
  writeResults("peers", {
    note: "2 CPU cores shared with other work on the machine (see the load average of the run); single broker on loopback. Each engine runs as its own process with one processing thread (Kafka Streams num.stream.threads=1). Medians of the rounds.",
    events: EVENTS,
    partitions: PARTITIONS,
    users: USERS,
    expectedResults,
    rounds: ROUNDS,
    job: "tumbling 1-minute windows per user, count + sum(amount), final results only, no grace, event time from `ts`",
    guarantee: "exactly-once (Kafka transactions; outputs read with read_committed)",
    commitIntervalMs: COMMIT_MS,
    latencyPhase: {
      rate: RATE,
      seconds: LATENCY_SECONDS,
      users: LIVE_USERS,
      eventTimeSpeedup: SPEED,
    },
    versions: ver,
    engines,
    baseline: { rawKafkajsConsumeEventsPerSec: summarize(baseline) },
    ratios: {
      sluice_vs_kafka_streams: ratio(
        med("sluice", (r) => r.eventsPerSec),
        med("kafka-streams", (r) => r.eventsPerSec),
      ),
      sluice_vs_quix: ratio(
        med("sluice", (r) => r.eventsPerSec),
        med("quix", (r) => r.eventsPerSec),
      ),
      sluice_vs_raw_kafkajs_consume: ratio(
        med("sluice", (r) => r.eventsPerSec),
        baseline.length ? median(baseline) : Number.NaN,
      ),
      p99_sluice_vs_kafka_streams: ratio(medLat("sluice"), medLat("kafka-streams")),
      cpu_per_event_sluice_vs_kafka_streams: ratio(
        med("sluice", (r) => r.cpuSecondsProcessing),
        med("kafka-streams", (r) => r.cpuSecondsProcessing),
      ),
    },
    verification: {
      allEnginesIdentical: allDigests.size === 1 && throughput.every((r) => r.verified),
      digests: [...allDigests],
      runs: throughput.map((r) => ({
        engine: r.engine,
        round: r.round,
        verified: r.verified,
        digest: r.digest,
        ...r.comparison,
      })),
      latencyRuns: latency.map((r) => ({
        engine: r.engine,
        round: r.round,
        verified: r.verified,
        ...r.comparison,
      })),
    },
    failures,
  });
}

await main();
// kafkajs may keep sockets or timers alive after disconnect; the suite is done.
process.exit(0);
