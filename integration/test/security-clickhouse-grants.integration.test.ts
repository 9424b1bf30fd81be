// The minimal rights of a ClickHouse sink user on a server without SQL access
// control (the 18.16 server of the local stack: users live in users.xml), on
// a private server started here so its users.xml can be changed: a password
// user limited to the pipeline's database (`allow_databases`) with a profile
// that may write (`readonly` 0) is all the sink needs; the same user is
// refused another database, and a `readonly` user is refused the insert —
// at once, not retried.
import { readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { createClickHouseSink, SinkError } from "@sluice/sinks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrivateClickHouse } from "../../scripts/stack.mjs";

type PrivateClickHouse = Awaited<ReturnType<typeof startPrivateClickHouse>>;

let server: PrivateClickHouse | undefined;
let dir = "";
let url = "";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const users = {
  writer: {
    name: "sink_writer",
    password: "writer-pass-1",
    profile: "sink",
    databases: ["analytics"],
  },
  reader: {
    name: "sink_readonly",
    password: "reader-pass-2",
    profile: "readonly_sink",
    databases: ["analytics"],
  },
};

/** Adds the test's profiles and users to the private server's users.xml (reloaded by the server). */
function addUsers(file: string): void {
  const xml = readFileSync(file, "utf8");
  const before = statSync(file).mtime;
  const profiles = `
    <sink><readonly>0</readonly></sink>
    <readonly_sink><readonly>1</readonly></readonly_sink>
  </profiles>`;
  const entries = Object.values(users)
    .map(
      (u) => `
    <${u.name}>
      <password>${u.password}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>${u.profile}</profile>
      <quota>default</quota>
      <allow_databases>${u.databases.map((d) => `<database>${d}</database>`).join("")}</allow_databases>
    </${u.name}>`,
    )
    .join("");
  writeFileSync(
    file,
    xml.replace("</profiles>", profiles).replace("</users>", `${entries}\n  </users>`),
    { mode: 0o600 },
  );
  // The server reloads users.xml when its modification time (in seconds)
  // changes: make sure it does, however fast this ran after the start.
  const later = new Date(Math.max(Date.now(), before.getTime()) + 2000);
  utimesSync(file, later, later);
}

function as(user: { name: string; password: string }): string {
  const u = new URL(url);
  u.username = user.name;
  u.password = user.password;
  return u.toString();
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sluice-ch-grants-"));
  server = await startPrivateClickHouse({ port: await freePort(), tcpPort: await freePort(), dir });
  url = server.url;
  const admin = createClient({ url });
  for (const query of [
    "CREATE DATABASE IF NOT EXISTS analytics",
    "CREATE DATABASE IF NOT EXISTS other",
    "CREATE TABLE analytics.user_sessions (user_id String, events UInt32) ENGINE = MergeTree ORDER BY user_id",
    "CREATE TABLE other.user_sessions (user_id String, events UInt32) ENGINE = MergeTree ORDER BY user_id",
  ])
    await admin.command({ query });
  await admin.close();
  addUsers(path.join(dir, "users.xml"));
  // The server rereads users.xml within a few seconds.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const probe = createClient({ url: as(users.writer), log: { level: ClickHouseLogLevel.OFF } });
    const ok =
      (await probe.ping()).success &&
      (await probe.query({ query: "SELECT 1" }).then(
        () => true,
        () => false,
      ));
    await probe.close();
    if (ok) break;
    if (Date.now() > deadline) throw new Error("the private server did not load the test users");
    await new Promise((r) => setTimeout(r, 250));
  }
}, 120_000);

afterAll(async () => {
  await server?.stop({ signal: "SIGKILL" }).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

async function runSink(user: { name: string; password: string }, database: string) {
  const sink = createClickHouseSink({
    url: as(user),
    database,
    table: "user_sessions",
    identity: (r: { user_id: string; events: number }) => r.user_id,
  });
  try {
    await sink.write([
      { user_id: "u1", events: 3 },
      { user_id: "u2", events: 5 },
    ]);
    await sink.flush();
    const health = await sink.health();
    return { error: undefined, health };
  } catch (error) {
    return { error: error as SinkError, health: undefined };
  } finally {
    await sink.close().catch(() => undefined);
  }
}

describe("ClickHouse 18.16: minimal rights of the sink user (users.xml)", () => {
  it("a password user limited to its database, allowed to write, is all the sink needs", async () => {
    const { error, health } = await runSink(users.writer, "analytics");
    expect(error).toBeUndefined();
    expect(health?.ok).toBe(true);
    const admin = createClient({ url });
    const rs = await admin.query({
      query: "SELECT sum(events) AS n FROM analytics.user_sessions",
      format: "JSONEachRow",
    });
    expect(await rs.json()).toEqual([{ n: "8" }]);
    await admin.close();
  });

  it("the same user is refused another database (CLICKHOUSE_291)", async () => {
    const { error } = await runSink(users.writer, "other");
    expect(error).toBeInstanceOf(SinkError);
    expect(error!.code).toBe("SINK_REJECTED");
    expect(error!.message).toMatch(/CLICKHOUSE_291/);
  });

  it("a readonly user is refused the insert at once (CLICKHOUSE_164)", async () => {
    const t0 = Date.now();
    const { error } = await runSink(users.reader, "analytics");
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(error).toBeInstanceOf(SinkError);
    expect(error!.code).toBe("SINK_REJECTED");
    expect(error!.message).toMatch(/CLICKHOUSE_164/);
  });
});
