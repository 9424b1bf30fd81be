// The minimal Redis ACL of the pipeline's Redis sinks, proven on a private
// redis-server started here (so the script cache can be flushed and no ACL
// user is left on the shared stack): a user allowed exactly
//   EVALSHA EVAL GET SET HSET ZADD PUBLISH PING (+ INFO for ioredis's ready check)
// on the deployment's key prefix and channel prefix (ioredis sends the
// fencing script with EVAL first on each connection, EVALSHA after) writes the live
// counters, the leaderboards and their pub/sub announcements; without any
// one of those commands the sink fails (NOPERM) instead of writing partially
// and going on.
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pipelineConfig, redisKeys } from "../src/pipeline/config.js";
import { createRedisOutputs } from "../src/services/redis-outputs.js";

/** The commands the pipeline's Redis sinks send (see docs/security.md). */
const NEEDED = ["evalsha", "eval", "get", "set", "hset", "zadd", "publish", "ping"];

let server: ChildProcess;
let port = 0;
let admin: Redis;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port: p } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  port = await freePort();
  server = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  admin = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 100 });
  admin.on("error", () => undefined); // refused until the server listens
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await admin.connect();
      await admin.ping();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      admin.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

afterAll(async () => {
  admin?.disconnect();
  server?.kill("SIGTERM");
  if (server && server.exitCode === null) await new Promise((r) => server.once("exit", r));
});

/** An ACL user limited to `commands`, on the deployment's keys and channels only. */
async function aclUser(name: string, password: string, commands: string[]) {
  await admin.call(
    "ACL",
    "SETUSER",
    name,
    "reset",
    "on",
    `>${password}`,
    "~sluice:*",
    "&sluice:*",
    "-@all",
    ...commands.map((c) => `+${c}`),
  );
}

const results = (windowStart: number) => [
  {
    key: "click",
    windowStart,
    windowEnd: windowStart + 60_000,
    value: 7,
    final: true,
    emitSeq: 0,
    partition: 0,
    id: `${windowStart}:c:0:click`,
  },
  {
    key: "/home",
    windowStart,
    windowEnd: windowStart + 300_000,
    value: 3,
    final: true,
    emitSeq: 0,
    partition: 1,
    id: `${windowStart}:p:0:/home`,
  },
];

/** Runs both Redis sinks of the pipeline as `user`; returns what failed, if anything. */
async function runSinks(ns: string, user: string, password: string) {
  const config = pipelineConfig(ns, {
    redisUrl: `redis://${user}:${password}@127.0.0.1:${port}`,
  });
  const outputs = createRedisOutputs(config);
  const counts = outputs.minuteCounts();
  const top = outputs.topPages();
  const errors: string[] = [];
  // ioredis sends the fencing script with EVAL the first time on a
  // connection and with EVALSHA after that: two batches use both.
  const [count1, page1] = results(60_000);
  const [count2, page2] = results(120_000);
  for (const [sink, batches] of [
    [counts, [count1, count2]],
    [top, [page1, page2]],
  ] as const) {
    try {
      for (const r of batches) {
        await sink.write([r!]);
        await sink.flush();
      }
    } catch (err) {
      errors.push((err as Error).message);
    }
    const health = await sink.health();
    if (!health.ok) errors.push(health.detail);
    await sink.close().catch((err: Error) => errors.push(err.message));
  }
  return { config, errors };
}

describe("minimal Redis ACL of the pipeline's sinks", () => {
  it("writes counters, leaderboards and announcements with exactly these commands", async () => {
    await aclUser("sink-min", "min-pass-1", [...NEEDED, "info"]);
    const sub = new Redis({ port, host: "127.0.0.1" });
    const announced: string[] = [];
    const ns = "acl_ok";
    await sub.subscribe(`sluice:${ns}:top-pages`);
    sub.on("message", (_channel, message) => announced.push(message));
    const { config, errors } = await runSinks(ns, "sink-min", "min-pass-1");
    expect(errors).toEqual([]);
    expect(await admin.hgetall(redisKeys.minuteCounts(config, 60_000))).toEqual({ click: "7" });
    expect(await admin.hgetall(redisKeys.minuteCounts(config, 120_000))).toEqual({ click: "7" });
    expect(await admin.zrange(redisKeys.topPages(config, 60_000), 0, -1, "WITHSCORES")).toEqual([
      "/home",
      "3",
    ]);
    const deadline = Date.now() + 5000;
    while (announced.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(JSON.parse(announced[0]!)).toMatchObject({ page: "/home", views: 3 });
    sub.disconnect();
  });

  it.each(NEEDED)("fails (NOPERM) without %s", async (missing) => {
    const user = `sink-no-${missing}`;
    await aclUser(user, "min-pass-2", [...NEEDED.filter((c) => c !== missing), "info"]);
    const { errors } = await runSinks(`acl_no_${missing}`, user, "min-pass-2");
    // Refused outside a script: NOPERM; inside the fencing script: "can't run this command".
    expect(errors.join("\n")).toMatch(/NOPERM|can't run this command/);
  });

  it("keeps the user to its key and channel prefix", async () => {
    await aclUser("sink-prefix", "min-pass-3", [...NEEDED, "info"]);
    const outside = new Redis(`redis://sink-prefix:min-pass-3@127.0.0.1:${port}`);
    await expect(outside.set("other:key", "1")).rejects.toThrow(/NOPERM/);
    await expect(outside.publish("other-channel", "x")).rejects.toThrow(/NOPERM/);
    outside.disconnect();
  });
});
