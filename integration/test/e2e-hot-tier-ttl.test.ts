// Hot-tier TTL of the raw `events` table, on embedded chDB (a current
// ClickHouse engine; the local 18.16 server has no TTL). The DDL the pipeline
// runs on a modern server carries `TTL event_date + INTERVAL hotTierDays DAY`,
// and rows older than that go away once ClickHouse merges the table.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Session } from "chdb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pipelineConfig } from "../src/pipeline/config.js";
import { rawEventRow } from "../src/pipeline/rows.js";
import { supportsTtl, tableDdl } from "../src/pipeline/setup.js";

const DAY = 86_400_000;
const config = pipelineConfig("e2e_ttl", { hotTierDays: 30 });

function versionOf(session: Session): [number, number] {
  const [major, minor] = session.query("SELECT version()", "TSV").trim().split(".").map(Number);
  return [major ?? 0, minor ?? 0];
}

function rows(session: Session, sql: string): Array<Record<string, unknown>> {
  return session
    .query(sql, "JSONEachRow")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("hot-tier TTL on raw events (embedded chDB)", () => {
  let dir = "";
  let session: Session;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "sluice-ttl-"));
    session = new Session(dir);
  });

  afterAll(async () => {
    session?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it("the old server gets no TTL, a current one does", () => {
    expect(supportsTtl([18, 16])).toBe(false);
    expect(supportsTtl([19, 5])).toBe(false);
    expect(supportsTtl([19, 6])).toBe(true);
    expect(supportsTtl(versionOf(session))).toBe(true);
  });

  it("rows older than hotTierDays are dropped on merge; younger ones stay", () => {
    const ddl = tableDdl(config, supportsTtl(versionOf(session)));
    const eventsDdl = ddl.find((q) => q.includes(`EXISTS ${config.tables.events} `))!;
    expect(eventsDdl).toContain("TTL event_date + INTERVAL 30 DAY");
    for (const q of ddl) session.query(q);
    const shown = session.query(`SHOW CREATE TABLE ${config.tables.events}`, "TSV");
    expect(shown).toMatch(/TTL event_date \+ toIntervalDay\(30\)/);
    // The other tables keep everything.
    expect(session.query(`SHOW CREATE TABLE ${config.tables.sessions}`, "TSV")).not.toMatch(/TTL/);

    // Hold TTL merges while inserting, so the expired rows are seen to exist first.
    session.query(`SYSTEM STOP TTL MERGES ${config.tables.events}`);
    const now = Date.now();
    const ages = { old: 60, edge: 31, recent: 29, today: 0 };
    const values = Object.entries(ages).map(([id, days]) => {
      const r = rawEventRow({
        event_id: id,
        user_id: "u000001",
        type: "page_view",
        page: "/",
        ts: now - days * DAY,
      });
      return `('${r.event_id}', '${r.user_id}', '${r.type}', '${r.page}', ${r.ts_ms}, ${r.revenue_cents}, '${r.event_date}')`;
    });
    session.query(`INSERT INTO ${config.tables.events} VALUES ${values.join(", ")}`);
    const ids = () =>
      rows(session, `SELECT event_id FROM ${config.tables.events} ORDER BY event_id`).map(
        (r) => r.event_id,
      );
    expect(ids()).toEqual(["edge", "old", "recent", "today"]);

    session.query(`SYSTEM START TTL MERGES ${config.tables.events}`);
    session.query(`OPTIMIZE TABLE ${config.tables.events} FINAL`);
    expect(ids()).toEqual(["recent", "today"]);
  });
});
