import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisSink } from "../src/index.js";
import { sleep } from "./helpers.js";

// A private three-master Redis Cluster on loopback, started and stopped by
// this file (the shared Redis is never touched).
const run = promisify(execFile);
const dir = mkdtempSync(path.join(os.tmpdir(), "sluice-sinks-cluster-"));
const servers: ChildProcess[] = [];
let ports: number[] = [];
let cluster: Cluster;

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = 20_000 + Math.floor(Math.random() * 9_000);
    if (out.includes(p)) continue;
    if ((await portFree(p)) && (await portFree(p + 10_000))) out.push(p);
  }
  return out;
}

beforeAll(async () => {
  ports = await freePorts(3);
  for (const port of ports) {
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        path.join(dir, `nodes-${port}.conf`),
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
      ],
      { stdio: "ignore" },
    );
    servers.push(child);
  }
  for (const port of ports) {
    for (let i = 0; i < 100 && (await portFree(port)); i++) await sleep(50);
  }
  await run("redis-cli", [
    "--cluster",
    "create",
    ...ports.map((p) => `127.0.0.1:${p}`),
    "--cluster-yes",
  ]);
  for (let i = 0; i < 100; i++) {
    const { stdout } = await run("redis-cli", ["-p", String(ports[0]), "cluster", "info"]);
    if (stdout.includes("cluster_state:ok")) break;
    await sleep(100);
  }
  cluster = new Cluster([{ host: "127.0.0.1", port: ports[0]! }]);
});

afterAll(async () => {
  await cluster?.quit().catch(() => {});
  for (const child of servers) child.kill("SIGTERM");
  await Promise.all(
    servers.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))),
  );
  rmSync(dir, { recursive: true, force: true });
});

describe("Redis sink on a Redis Cluster", () => {
  it("keys share their partition's slot with the fence; replays leave the cluster unchanged", async () => {
    const records = Array.from({ length: 120 }, (_, i) => ({
      key: `user-${i % 5}`,
      value: i + 1,
      partition: i % 6,
      offset: Math.floor(i / 6),
    }));
    const write = async () => {
      const sink = createRedisSink<(typeof records)[number]>({
        redis: cluster,
        keyPrefix: "t:",
        write: "counter",
        jobId: "agg",
        maxBatchRows: 25,
      });
      await sink.write(records);
      await sink.close();
      return sink;
    };
    const sink = await write();
    await write();
    await write();
    const slots = new Set<number>();
    for (let p = 0; p < 6; p++) {
      const fence = sink.fenceKey(p);
      expect(fence).toBe(`t:{agg:${p}}:fence`);
      const slot = Number(await cluster.cluster("KEYSLOT", fence));
      slots.add(slot);
      for (let u = 0; u < 5; u++) {
        const key = `t:{agg:${p}}:user-${u}`;
        expect(Number(await cluster.cluster("KEYSLOT", key))).toBe(slot);
        const expected = records
          .filter((r) => r.partition === p && r.key === `user-${u}`)
          .reduce((a, r) => a + r.value, 0);
        expect(Number((await cluster.get(key)) ?? 0)).toBe(expected);
      }
      expect(await cluster.get(fence)).toBe(
        String(Math.max(...records.filter((r) => r.partition === p).map((r) => r.offset))),
      );
    }
    expect(slots.size).toBe(6);
  });
});
