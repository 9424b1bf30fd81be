// The member id a job keeps in its state directory, and what a restart does
// with it, without a broker: the file's handling and the answers mapped.
// The broker side (a killed member removed, the restart joining at once) is
// in crash.integration.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { replacePreviousMember } from "../src/index.js";
import { leavePreviousMember, memberKeeper } from "../src/internal/previous-member.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const stateDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), "wmember-"));
  dirs.push(d);
  return d;
};

/** A cluster whose coordinator records LeaveGroup calls and answers with `answer`. */
function cluster(answer?: Error & { type?: string }) {
  const calls: { groupId: string; memberId: string }[] = [];
  return {
    calls,
    findGroupCoordinator: async () => ({
      leaveGroup: async (q: { groupId: string; memberId: string }) => {
        calls.push(q);
        if (answer) throw answer;
      },
    }),
  };
}

const protocolError = (type: string) => Object.assign(new Error(type), { type });

it("keeps the last join's member id and removes that member at the next start", async () => {
  const dir = stateDir();
  const keeper = memberKeeper(dir, "app");
  keeper.keep("m-1");
  keeper.keep("m-2");
  await keeper.flush();
  expect(JSON.parse(readFileSync(path.join(dir, "group-member.json"), "utf8"))).toEqual({
    groupId: "app",
    memberId: "m-2",
  });
  const c = cluster();
  expect(await leavePreviousMember(dir, "app", c)).toBe("removed");
  expect(c.calls).toEqual([{ groupId: "app", memberId: "m-2" }]);
});

it("sends nothing without a kept member, for another group, or after a write cut short", async () => {
  const c = cluster();
  expect(await leavePreviousMember(stateDir(), "app", c)).toBe("none");
  const other = stateDir();
  const keeper = memberKeeper(other, "another-app");
  keeper.keep("m-1");
  await keeper.flush();
  expect(await leavePreviousMember(other, "app", c)).toBe("none");
  const cut = stateDir();
  writeFileSync(path.join(cut, "group-member.json"), '{"groupId":"app","memb');
  expect(await leavePreviousMember(cut, "app", c)).toBe("none");
  expect(c.calls).toEqual([]);
});

it("a member already gone is 'gone'; a failed LeaveGroup or no cluster is 'failed', never thrown", async () => {
  const dir = stateDir();
  const keeper = memberKeeper(dir, "app");
  keeper.keep("m-1");
  await keeper.flush();
  expect(await leavePreviousMember(dir, "app", cluster(protocolError("UNKNOWN_MEMBER_ID")))).toBe(
    "gone",
  );
  expect(
    await leavePreviousMember(dir, "app", cluster(protocolError("COORDINATOR_NOT_AVAILABLE"))),
  ).toBe("failed");
  expect(await leavePreviousMember(dir, "app", undefined)).toBe("failed");
  expect(await leavePreviousMember(dir, "app", {})).toBe("failed");
});

it("replacePreviousMember needs a directory and a group: WINDOWING_INVALID_OPTIONS otherwise", async () => {
  const kafka = {} as Parameters<typeof replacePreviousMember>[0];
  const consumer = {} as Parameters<typeof replacePreviousMember>[1];
  for (const opts of [
    { dir: "", groupId: "g" },
    { dir: stateDir(), groupId: "" },
  ]) {
    await expect(replacePreviousMember(kafka, consumer, opts)).rejects.toMatchObject({
      code: "WINDOWING_INVALID_OPTIONS",
    });
  }
});
