// A member killed without leaving its group (SIGKILL, a crash, a lost
// machine) stays a member until its session times out (`sessionTimeoutMs`,
// 30 s by default). A rebalance waits for every member to join again, so a
// restart's first join, and every other member's, waits out the dead
// member's session. The member id of each join is therefore kept in the
// state directory, and a restart on that directory removes the previous
// incarnation's member from the group (LeaveGroup with its member id)
// before it joins: the group then rebalances without it at once. The state
// store's lock makes the directory one process's at a time, so the member
// removed is never a live one. Leaving is best effort: when it cannot be
// sent (no private cluster, a coordinator error), the group waits out the
// session as before.
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

const FILE = "group-member.json";

interface Kept {
  groupId: string;
  memberId: string;
}

type BrokerLike = {
  leaveGroup?: (q: { groupId: string; memberId: string }) => Promise<unknown>;
};
type ClusterLike = {
  findGroupCoordinator?: (q: { groupId: string }) => Promise<BrokerLike>;
};

/** The member id the previous incarnation on `stateDir` joined `groupId` with, if kept. */
async function keptMember(stateDir: string, groupId: string): Promise<string | undefined> {
  try {
    const kept = JSON.parse(await readFile(path.join(stateDir, FILE), "utf8")) as Partial<Kept>;
    return kept.groupId === groupId && typeof kept.memberId === "string" && kept.memberId
      ? kept.memberId
      : undefined;
  } catch {
    return undefined; // none kept, or a write cut short by a crash
  }
}

/**
 * Removes the member the previous incarnation on `stateDir` joined
 * `groupId` with, through `cluster` (a kafkajs cluster). Resolves to
 * `'removed'`, `'gone'` (it had left or timed out already), `'none'` (no
 * member kept) or `'failed'` (the group waits out its session).
 */
export async function leavePreviousMember(
  stateDir: string,
  groupId: string,
  cluster: object | undefined,
): Promise<"removed" | "gone" | "none" | "failed"> {
  const memberId = await keptMember(stateDir, groupId);
  if (memberId === undefined) return "none";
  const c = cluster as ClusterLike | undefined;
  if (typeof c?.findGroupCoordinator !== "function") return "failed";
  try {
    const broker = await c.findGroupCoordinator({ groupId });
    if (typeof broker.leaveGroup !== "function") return "failed";
    await broker.leaveGroup({ groupId, memberId });
    return "removed";
  } catch (err) {
    const type = (err as { type?: unknown } | null)?.type;
    return type === "UNKNOWN_MEMBER_ID" || type === "GROUP_ID_NOT_FOUND" ? "gone" : "failed";
  }
}

/**
 * Keeps the member id of each join in `stateDir`, one write after another
 * (the last join's id wins); `flush()` waits for the writes.
 */
export function memberKeeper(
  stateDir: string,
  groupId: string,
): { keep: (memberId: string) => void; flush: () => Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  const file = path.join(stateDir, FILE);
  return {
    keep(memberId) {
      const body = JSON.stringify({ groupId, memberId } satisfies Kept);
      chain = chain
        .then(async () => {
          // Written aside, then renamed: a crash never leaves half a file.
          await writeFile(`${file}.tmp`, body);
          await rename(`${file}.tmp`, file);
        })
        .catch(() => {}); // not kept: a restart waits out the session instead
    },
    flush: () => chain,
  };
}
