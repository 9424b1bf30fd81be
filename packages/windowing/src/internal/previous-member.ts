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
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { onPrivateCluster } from "@sluice/producer";
import kafkajs, { type Consumer, type Kafka } from "kafkajs";
import { WindowingError } from "../windowing-error.js";

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

/**
 * Gives a plain kafkajs consumer the restart behaviour of a job's own
 * consumer: removes from `groupId` the member that the previous process on
 * `dir` joined with and never left (killed, crashed), so the group does not
 * wait out that member's session; then keeps the member id of each of
 * `consumer`'s joins in `dir` (`group-member.json`) for the next process.
 * Call it before `consumer.run()`. `dir` must be the process's own: one
 * process at a time (a state directory held by a lock, say), or it could
 * remove a live member of another process.
 *
 * It is best effort: a member that had already left or timed out is
 * `'gone'`, and a LeaveGroup that could not be sent (another kafkajs copy,
 * a coordinator error) is `'failed'`, the group then waiting out the session
 * as before; it never throws for those.
 *
 * @param kafka - the client `consumer` was made from
 * @param consumer - a kafkajs consumer of `groupId`, not yet running
 * @param opts - `dir`: the process's own directory; `groupId`: the consumer's group
 * @returns what became of the previous member: `'removed'`, `'gone'`,
 *   `'none'` (none was kept) or `'failed'`
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` when `dir` or `groupId` is missing
 * @example
 * ```ts
 * const consumer = kafka.consumer({ groupId: "copier" });
 * await consumer.connect();
 * await replacePreviousMember(kafka, consumer, { dir: "./state/copier", groupId: "copier" });
 * await consumer.subscribe({ topic: "events" });
 * await consumer.run({ eachBatch });
 * ```
 * @since 0.3.0
 */
export async function replacePreviousMember(
  kafka: Kafka,
  consumer: Consumer,
  opts: { dir: string; groupId: string },
): Promise<"removed" | "gone" | "none" | "failed"> {
  const { dir, groupId } = opts ?? {};
  if (typeof dir !== "string" || dir.length === 0 || typeof groupId !== "string" || !groupId) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      "replacePreviousMember needs { dir, groupId }: the process's own directory and the consumer's group",
    );
  }
  await mkdir(dir, { recursive: true });
  const keeper = memberKeeper(dir, groupId);
  consumer.on(consumer.events.GROUP_JOIN, (e) => keeper.keep(e.payload.memberId));
  // No admin connection unless there is a member to remove.
  if ((await keptMember(dir, groupId)) === undefined) return "none";
  // A short-lived admin on a private cluster, for its group coordinator.
  const hooked = onPrivateCluster(
    kafka,
    (child) => kafkajs.Kafka.prototype.admin.call(child),
    () => {},
  );
  if (!hooked.cluster || !hooked.made) return "failed";
  const admin = hooked.made;
  try {
    await admin.connect();
    return await leavePreviousMember(dir, groupId, hooked.cluster);
  } catch {
    return "failed";
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
