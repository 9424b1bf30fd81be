// Exactly-once of the join and pattern operators under SIGKILL: a
// stream–stream left join and a cart-abandonment pattern job are killed at
// random moments while input arrives, restarted, and their read_committed
// output must equal the oracle record for record.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Message, Partitioners } from "kafkajs";
import { expect, it } from "vitest";
import { createTestDriver, defineJob, pattern, type WindowResult } from "../src/index.js";
import { streamJoinOracle } from "./join-oracle.js";
import {
  brokerFixture,
  brokers,
  createTopic,
  produce,
  readAll,
  uniqueName,
} from "./kafka-helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const { kafka, admin, prefixes, dirs, children } = brokerFixture();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const log = (m: string) => {
  if (process.env.SLUICE_TEST_VERBOSE) console.log(`[joins-crash +${Date.now() - t0} ms] ${m}`);
};

function startJob(envs: Record<string, string>): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(here, "fixtures/joins-crash-job.ts")],
    {
      cwd: root,
      env: {
        ...process.env,
        ...envs,
        TSX_TSCONFIG_PATH: path.join(root, "packages/windowing/tsconfig.json"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  let err = "";
  child.stderr?.on("data", (d) => {
    err += String(d);
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      if (String(d).includes("ready")) resolve();
    });
    child.on("exit", (code, signal) =>
      reject(new Error(`job exited (${code ?? signal}) before ready: ${err.slice(-2000)}`)),
    );
  });
  ready.catch(() => {});
  return { child, ready };
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  const forced = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(forced);
}

/** Starts, SIGKILLs `kills` times at pseudo-random moments while `producing` runs; returns the last (running) job. */
async function killLoop(env: Record<string, string>, kills: number, seed0: number) {
  let seed = seed0;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let k = 0; k < kills; k++) {
    const { child, ready } = startJob(env);
    await ready;
    log(`job ${k + 1} ready`);
    await sleep(300 + rand() * 2500);
    await kill(child, "SIGKILL");
  }
  const last = startJob(env);
  await last.ready;
  log("last job ready");
  return last.child;
}

async function readResults(topic: string, want: number, timeoutMs: number): Promise<string[]> {
  let got: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const rows = await readAll(kafka, admin, topic);
    got = rows.map((r) => {
      const w = JSON.parse(r.value as string) as WindowResult<unknown>;
      return `${w.id}=${JSON.stringify(w.value)}`;
    });
    log(`output ${got.length}/${want}`);
    if (got.length >= want) break;
    await sleep(1000);
  }
  return got.sort();
}

/** Keys whose murmur2 partition covers every partition of an n-partition topic. */
function keysCovering(n: number, prefix: string): string[] {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: n }, (_, p) => ({
    partitionId: p,
    leader: 0,
    replicas: [0],
    isr: [0],
    partitionErrorCode: 0,
  }));
  const keys = new Map<number, string>();
  for (let i = 0; keys.size < n; i++) {
    const key = `${prefix}${i}`;
    const p = partitioner({ topic: "t", partitionMetadata, message: { key, value: null } });
    if (!keys.has(p)) keys.set(p, key);
  }
  return [...keys.values()];
}

/**
 * A stream–stream left join over two 3-partition topics while `drive` runs
 * the job processes (given the env, a fresh state dir per call, and the
 * production promise); it returns the members still running at the end.
 * After the job caught up, end markers flush every buffered record; the
 * read_committed output must equal the oracle.
 */
async function joinScenario(
  prefix: string,
  drive: (
    env: Record<string, string>,
    stateDir: () => string,
    producing: Promise<void>,
  ) => Promise<ChildProcess[]>,
): Promise<void> {
  const base = uniqueName(prefix);
  prefixes.push(base);
  const clicks = `${base}-clicks`;
  const buys = `${base}-buys`;
  const output = `${base}-out`;
  const partitions = 3;
  await createTopic(admin, clicks, partitions);
  await createTopic(admin, buys, partitions);
  const stateDir = () => {
    const d = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
    dirs.push(d);
    return d;
  };
  const n = Number(process.env.SLUICE_JOIN_CRASH_EVENTS ?? 4_000);
  const within = 400;
  // Grace covers the whole input's event-time span: which side of the
  // repartition topic is read first can then never make a record late, so
  // the output is a function of the input alone.
  const grace = n * 10;
  type Rec = { side: 0 | 1; key: string; t: number; v: number; partition: number };
  const recs: Rec[] = [];
  for (let i = 0; i < n; i++) {
    const u = (i * 7919) % 200;
    const side = i % 3 === 0 ? 1 : 0;
    recs.push({ side, key: `u${u}`, t: i * 5 + ((i * 31) % 150), v: i, partition: u % partitions });
  }
  const env = {
    MODE: "join",
    BROKERS: brokers.join(","),
    APP: base,
    SOURCE: clicks,
    OTHER: buys,
    OUTPUT: output,
    WITHIN: String(within),
    GRACE: String(grace),
  };
  const toMessage = (r: Rec): Message => ({
    key: r.key,
    value: JSON.stringify(
      r.side === 0 ? { user: r.key, page: r.v, ts: r.t } : { user: r.key, amount: r.v, ts: r.t },
    ),
    partition: r.partition,
  });
  const chunks = 20;
  const size = Math.ceil(recs.length / chunks);
  const producing = (async () => {
    for (let c = 0; c < chunks; c++) {
      const part = recs.slice(c * size, (c + 1) * size);
      await produce(kafka, clicks, part.filter((r) => r.side === 0).map(toMessage));
      await produce(kafka, buys, part.filter((r) => r.side === 1).map(toMessage));
      await sleep(400);
    }
  })();
  const running = await drive(env, stateDir, producing);
  await producing;
  // Once the job has consumed every record, end markers far in the future
  // (one per repartition partition and side) make stream time pass every bound.
  const ends = async () =>
    (await admin.fetchTopicOffsets(clicks)).concat(await admin.fetchTopicOffsets(buys));
  const endAt = n * 5 + 150 + within + grace + 1_000;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const committed = await admin.fetchOffsets({ groupId: base, topics: [clicks, buys] });
    const want = await ends();
    const total = committed.flatMap((t) => t.partitions).reduce((a, p) => a + Number(p.offset), 0);
    const high = want.reduce((a, w) => a + Number(w.high), 0);
    log(`consumed ${total}/${high}`);
    if (total >= high) break;
    if (Date.now() > deadline) throw new Error("the job did not catch up");
    await sleep(500);
  }
  // both sides: stream time is the slower side's
  const markers: Rec[] = keysCovering(partitions, "end").flatMap((key, i) =>
    ([0, 1] as const).map((side) => ({
      side,
      key,
      t: endAt,
      v: -1 - i,
      partition: i % partitions,
    })),
  );
  await produce(kafka, clicks, markers.filter((m) => m.side === 0).map(toMessage));
  await produce(kafka, buys, markers.filter((m) => m.side === 1).map(toMessage));
  log("end markers sent");
  const oracle = streamJoinOracle(
    [...recs, ...markers].map(({ side, key, t, v }) => ({ side, key, t, v })),
    { type: "left", within, grace },
  );
  // the oracle's values are { left: v, right: v }; the job emits the records
  const byV = new Map([...recs, ...markers].map((r) => [`${r.side}:${r.v}`, r]));
  const expected = oracle.results
    .map((line) => {
      const [id, value] = line.split("=") as [string, string];
      const { left, right } = JSON.parse(value) as { left: number | null; right: number | null };
      const l = left === null ? null : byV.get(`0:${left}`);
      const r = right === null ? null : byV.get(`1:${right}`);
      return `${id}=${JSON.stringify({
        left: l ? { user: l.key, page: l.v, ts: l.t } : null,
        right: r ? { user: r.key, amount: r.v, ts: r.t } : null,
      })}`;
    })
    .sort();
  expect(oracle.late).toBe(0);
  expect(expected.length).toBeGreaterThan(1000);
  const got = await readResults(output, expected.length, 60_000);
  for (const c of running) await kill(c, "SIGTERM");
  expect(got.length).toBe(expected.length);
  expect(got).toEqual(expected);
}

it("stream–stream left join: SIGKILL at random moments, restart, output equals the oracle", {
  timeout: 180_000,
}, async () => {
  await joinScenario("jcrash", async (env, stateDir) => [
    await killLoop({ ...env, STATE_DIR: stateDir() }, 3, 4242),
  ]);
});

it("stream–stream left join: scaling 1 → 2 → 1 members mid-stream keeps the output exact", {
  timeout: 180_000,
}, async () => {
  await joinScenario("jscale", async (env, stateDir) => {
    const a = startJob({ ...env, STATE_DIR: stateDir() });
    await a.ready;
    await sleep(2_500);
    const b = startJob({ ...env, STATE_DIR: stateDir() });
    await b.ready;
    log("second member ready");
    await sleep(2_500);
    await kill(a.child, "SIGTERM");
    log("first member stopped");
    return [b.child];
  });
});

it("cart-abandonment pattern: SIGKILL at random moments, restart, output equals the oracle", {
  timeout: 180_000,
}, async () => {
  const base = uniqueName("pcrash");
  prefixes.push(base);
  const source = `${base}-events`;
  const output = `${base}-out`;
  const partitions = 3;
  await createTopic(admin, source, partitions);
  const stateDir = mkdtempSync(path.join(tmpdir(), "pcrash-"));
  dirs.push(stateDir);
  const n = Number(process.env.SLUICE_PATTERN_CRASH_EVENTS ?? 12_000);
  const within = 6_000;
  const grace = 300;
  const types = [
    "page_view",
    "add_to_cart",
    "page_view",
    "purchase",
    "other",
    "add_to_cart",
    "page_view",
  ];
  type Ev = { user: string; type: string; ts: number };
  const msgs: { ev: Ev; partition: number }[] = [];
  for (let i = 0; i < n; i++) {
    const u = (i * 7919) % 300;
    const h = (i * 2654435761) % 4294967296;
    // jitter within grace; every 97th event 2 s behind: late
    const ts = i * 5 + ((i * 31) % 150) - (i % 97 === 0 ? 2_000 : 0);
    msgs.push({
      ev: { user: `u${u}`, type: types[Math.floor(h / 7) % 7] as string, ts: Math.max(0, ts) },
      partition: u % partitions,
    });
  }
  for (let p = 0; p < partitions; p++)
    msgs.push({ ev: { user: `end${p}`, type: "other", ts: n * 5 + 100_000 }, partition: p });
  const driver = createTestDriver(
    defineJob<Ev>({ source: { eventTime: "ts" } }).match(
      pattern<Ev>({ within, grace })
        .step("view", (e) => e.type === "page_view")
        .step("cart", (e) => e.type === "add_to_cart")
        .notFollowedBy("purchase", (e) => e.type === "purchase"),
    ),
    { partitions },
  );
  for (const { ev, partition } of msgs)
    driver.pipe(ev, { key: ev.user, partition, timestamp: ev.ts });
  const expected = driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
  expect(expected.length).toBeGreaterThan(300);
  expect(driver.late.length).toBeGreaterThan(50);
  const env = {
    MODE: "pattern",
    BROKERS: brokers.join(","),
    APP: base,
    SOURCE: source,
    OUTPUT: output,
    STATE_DIR: stateDir,
    WITHIN: String(within),
    GRACE: String(grace),
  };
  const chunks = 20;
  const size = Math.ceil(msgs.length / chunks);
  const producing = (async () => {
    for (let c = 0; c < chunks; c++) {
      const part: Message[] = msgs
        .slice(c * size, (c + 1) * size)
        .map(({ ev, partition }) => ({ key: ev.user, value: JSON.stringify(ev), partition }));
      await produce(kafka, source, part);
      await sleep(400);
    }
  })();
  const last = await killLoop(env, 3, 777);
  await producing;
  const got = await readResults(output, expected.length, 60_000);
  await kill(last, "SIGTERM");
  expect(got.length).toBe(expected.length);
  expect(got).toEqual(expected);
});
