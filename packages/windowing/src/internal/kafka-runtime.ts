// The Kafka side of a job: one consumer in the application's group, one
// transactional producer per member (exactly-once) or one idempotent producer
// (at-least-once), state restored from the compacted changelog topic, and a
// commit every commitIntervalMs that writes changelog + outputs + offsets.
// Exactly-once writes each commit as one transaction for all of the member's
// partitions, its offsets fenced by the member's group generation (KIP-447):
// a member that lost a partition in a rebalance can no longer commit it. The
// member's transactional id is kept in its state directory, so a restarted
// process fences its previous incarnation's open transaction at once. With
// pipelineCommits (every output a Kafka topic, no repartition), a commit's
// writes run behind processing (at most one commit in flight): the next
// records are processed while the previous commit's transaction runs.
// At-least-once writes topic outputs as soon as their batch is processed; its
// commits wait for them (writeOutputsEarly).

import { randomUUID } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  createKafkaProducer,
  fetchStableOffsets,
  type GroupGeneration,
  type KafkaProducer,
  murmur2Partitioner,
  recordGroupGenerations,
  sendOffsetsFenced,
} from "@sluice/producer";
import { openStateStore, type StateStore, type ValueCodec } from "@sluice/state";
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  logLevel,
  type Message,
  type Producer,
  type RecordMetadata,
  type TopicMessages,
} from "kafkajs";
import type { ResolvedJobOptions } from "../job.js";
import type { LateRecord, WindowResult } from "../window-result.js";
import { WindowingError } from "../windowing-error.js";
import { ChangelogFold, encodeMutations } from "./changelog-codec.js";
import { deleteStaleRestoreGroups, readChangelog } from "./changelog-reader.js";
import { publish } from "./channels.js";
import type { JobDefinition } from "./definition.js";
import { type EngineOutput, PartitionEngine } from "./engine.js";
import { Mutex } from "./mutex.js";
import { leavePreviousMember, memberKeeper } from "./previous-member.js";
import { createReadCommittedConsumer, readCommittedInfo } from "./read-committed.js";

/** One unit's share of a commit, drained from it at one instant. */
interface Work {
  u: Unit;
  topicMessages: TopicMessages[];
  /** The unit's next offset when drained: what this commit covers. */
  offset: string | undefined;
  /** The unit's stream time when drained. */
  streamTime: number;
}

interface Unit {
  topic: string;
  partition: number;
  stateful: boolean;
  engine?: PartitionEngine;
  /** Next offset to consume = the offset to commit. */
  nextOffset?: string;
  committedOffset?: string;
  ready: boolean;
  /** Consecutive seeks back to nextOffset (a batch started past it). */
  seeks: number;
  pending: Map<string, Message[]>;
  pendingCount: number;
  dirty: boolean;
  highWatermark?: string;
}

/** A background commit draining its units between batches. */
interface StagedCommit {
  units: Unit[];
  /** Index in `units` of the next unit to drain. */
  next: number;
  work: Work[];
  t0: number;
}

const HEADER_PREFIX = "sluice-";

/** Values of the local changelog copy: the record values as sent, byte for byte. */
const bytesCodec: ValueCodec<Buffer> = {
  name: "bytes",
  encode: (b) => b,
  decode: (b) => b,
};
/**
 * A background commit drains its units for at most this long per turn of
 * the event loop (one unit at least), then lets batches run: draining every
 * partition's changed windows at once held the event loop for 50-100 ms at
 * 20,000 events/s.
 */
let stageBudgetMs = 4;

/**
 * @internal Tests only: the drain budget per turn of a staged commit (0
 * drains one unit per turn, so every commit of several units is staged).
 */
export function setStageBudgetMs(ms: number): void {
  stageBudgetMs = ms;
}

/**
 * The producer's epoch is over: its transaction outlived the transaction
 * timeout (the coordinator aborted it), or another producer registered the
 * same transactional id.
 */
function isProducerFenced(err: unknown): boolean {
  for (
    let e = err as { type?: string; name?: string; cause?: unknown } | undefined, i = 0;
    e && i < 4;
    e = e.cause as typeof e, i++
  ) {
    if (/INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/.test(`${e.type ?? ""} ${e.name ?? ""}`))
      return true;
  }
  return false;
}

/** The group refused a commit's offsets: the member's generation is over (a rebalance moved on). */
function isGroupFenced(err: unknown): boolean {
  const type = (err as { type?: unknown } | undefined)?.type;
  return (
    type === "ILLEGAL_GENERATION" ||
    type === "UNKNOWN_MEMBER_ID" ||
    type === "FENCED_INSTANCE_ID" ||
    type === "REBALANCE_IN_PROGRESS"
  );
}

/**
 * The member's transactional id, kept in its state directory (which one
 * process holds at a time, through the state store's lock): a restart
 * reuses it, and its first transaction fences and aborts the previous
 * incarnation's open transaction.
 */
async function memberTransactionalId(stateDir: string, applicationId: string): Promise<string> {
  const file = path.join(stateDir, "transactional-id");
  const kept = await readFile(file, "utf8").catch(() => "");
  const id = /^[0-9a-f-]{36}$/.test(kept.trim()) ? kept.trim() : randomUUID();
  if (id !== kept.trim()) await writeFile(file, id);
  return `${applicationId}-${id}`;
}

export class KafkaRuntime {
  status: "opening" | "open" | "closing" | "closed" = "closed";
  private readonly def: JobDefinition;
  private readonly opts: ResolvedJobOptions;
  private kafka!: Kafka;
  private admin!: Admin;
  private consumer!: Consumer;
  private aloProducer: Producer | undefined;
  /** Exactly-once: the member's transactional producer and its id. */
  private txnProducer: KafkaProducer | undefined;
  private transactionalId = "";
  /** The generation of the member's last JoinGroup answer. */
  private joinedGeneration: GroupGeneration | undefined;
  /** Keeps each join's member id in the state directory, for the next incarnation to remove. */
  private memberKeeper: ReturnType<typeof memberKeeper> | undefined;
  /**
   * The generation the units' assignment belongs to, set with it: the
   * generation commits fence their offsets with.
   */
  private generation: GroupGeneration | undefined;
  private readonly units = new Map<string, Unit>();
  private readonly lock = new Mutex();
  private timer: NodeJS.Timeout | undefined;
  private lastCommit = Date.now();
  private rebalancing = false;
  private failure: unknown;
  private readonly changelogTopic: string;
  private readonly repartitionTopic: string | undefined;
  private readonly lateTopic: string | undefined;
  private partitionCount = 0;
  /**
   * Partition counts of the topics this job writes keyed messages to
   * (outputs, late, DLQ, repartition), read once at start. Their messages
   * get their partition here, as kafkajs's default partitioner would choose
   * it, so the producer hands kafkajs one message per partition.
   */
  private readonly partitionsOf = new Map<string, number>();
  private readonly partitioner = murmur2Partitioner();
  private onSignal: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private assigned = new Set<string>();
  private store: StateStore<Buffer> | undefined;
  private readonly localChain = new Map<number, Promise<void>>();
  /** Partitions whose local copy must not be updated until they are restored again. */
  private readonly localBroken = new Set<number>();
  /** The commit whose writes are running behind processing, if any. */
  private inflight: Promise<void> | undefined;
  /** A background commit still draining its units, a few per turn of the lock (see stageCommit). */
  private staged: StagedCommit | undefined;
  /** Why the last background commit failed; thrown by the next batch or commit. */
  private writeError: unknown;
  /** At-least-once: output writes started ahead of their commit (see writeOutputsEarly). */
  private readonly earlyWrites = new Set<Promise<void>>();

  constructor(def: JobDefinition, opts: ResolvedJobOptions) {
    this.def = def;
    this.opts = opts;
    this.changelogTopic = `${opts.applicationId}.windows.changelog`;
    this.repartitionTopic =
      def.steps.some((s) => s.kind === "keyBy") || def.repartitionAlways
        ? `${opts.applicationId}-repartition`
        : undefined;
    this.lateTopic = def.late.length === 0 ? `${opts.applicationId}-late` : undefined;
  }

  private get eos(): boolean {
    return this.opts.guarantee === "exactly-once";
  }

  /**
   * Whether a commit's writes may run behind processing. Only when every
   * output goes through the Kafka transaction (a sink or callback output is
   * flushed at each commit and keeps the commit in step with processing),
   * and not through a repartition topic: there a commit running behind lets
   * one source partition's records reach the windows a whole batch ahead of
   * the others', and the wider disorder turns records late.
   */
  private get pipelined(): boolean {
    return (
      this.opts.pipelineCommits &&
      this.status === "open" &&
      this.repartitionTopic === undefined &&
      this.def.outputs.every((o) => o.kind === "topic")
    );
  }

  private get stateTopic(): string {
    return this.repartitionTopic ?? this.opts.topic;
  }

  async start(): Promise<void> {
    // Retriable broker errors while starting (a topic just created whose
    // metadata has not spread yet, a coordinator moving) are retried.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startOnce();
        return;
      } catch (err) {
        const cause = (err as { cause?: { retriable?: boolean } }).cause;
        if (attempt >= 4 || !(cause?.retriable || (err as { retriable?: boolean }).retriable))
          throw err;
        if (WindowingError.isInstance(err) && err.code !== "WINDOWING_KAFKA_FAILED") throw err;
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }

  private async startOnce(): Promise<void> {
    this.status = "opening";
    try {
      this.kafka =
        this.opts.kafka ??
        new Kafka({
          clientId: this.opts.applicationId,
          brokers: this.opts.brokers ?? [],
          logLevel: logLevel.NOTHING,
        });
      this.admin = this.kafka.admin();
      await this.admin.connect();
      // The local copy holds changelog values as the bytes sent to Kafka.
      // Copies of the earlier layout (the "windows" store, the same bytes
      // as JSON strings) are only a cache of the changelog: removed.
      await rm(path.join(this.opts.stateDir, "windows"), { recursive: true, force: true });
      this.store = await openStateStore<Buffer>({
        dir: this.opts.stateDir,
        name: "window-changelog",
        codec: bytesCodec,
      });
      await this.ensureTopics();
      // Restore groups of members killed during a restore; an error (an ACL
      // without Describe on groups, say) leaves them for the next start.
      await deleteStaleRestoreGroups(this.admin, this.changelogTopic).catch(() => []);
      if (!this.eos) {
        // idempotent: up to 5 requests in flight keep per-partition order
        this.aloProducer = createKafkaProducer({
          kafka: this.kafka,
          config: { idempotent: true, maxInFlightRequests: 5 },
        });
        await this.aloProducer.connect();
      }
      this.consumer = createReadCommittedConsumer(
        this.kafka,
        {
          groupId: this.opts.applicationId,
          readUncommitted: false,
          sessionTimeout: this.opts.sessionTimeoutMs,
          heartbeatInterval: Math.min(3000, Math.floor(this.opts.sessionTimeoutMs / 3)),
          maxWaitTimeInMs: 50,
          retry: { retries: 8 },
        },
        (broker) =>
          recordGroupGenerations(broker, (g) => {
            if (g.groupId === this.opts.applicationId) this.joinedGeneration = g;
          }),
      );
      if (this.eos) await this.openTransactions();
      this.consumer.on(this.consumer.events.REBALANCING, () => {
        this.rebalancing = true;
      });
      const keeper = memberKeeper(this.opts.stateDir, this.opts.applicationId);
      this.memberKeeper = keeper;
      this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
        this.rebalancing = false;
        keeper.keep(e.payload.memberId);
        // The join's generation, taken now: the assignment belongs to it.
        const generation = this.joinedGeneration;
        void this.onAssignment(e.payload.memberAssignment, generation).catch((err) =>
          this.fail(err),
        );
      });
      // A fetch of only aborted or control records never reaches eachBatch;
      // kafkajs reports it here. If it covers the unit's next offset, those
      // offsets hold nothing to process: move past them, or onBatch would
      // move the partition back to them forever once they fill a fetch.
      this.consumer.on(this.consumer.events.END_BATCH_PROCESS, (e) => {
        const { topic, partition, batchSize, firstOffset, lastOffset } = e.payload;
        if (batchSize !== 0 || firstOffset == null || lastOffset == null) return;
        void this.lock.run(async () => {
          const u = this.units.get(this.unitKey(topic, partition));
          if (!u?.ready || u.nextOffset === undefined) return;
          const next = BigInt(u.nextOffset);
          if (BigInt(firstOffset) <= next && next <= BigInt(lastOffset)) {
            u.nextOffset = (BigInt(lastOffset) + 1n).toString();
            u.dirty = true;
          }
        });
      });
      this.consumer.on(this.consumer.events.CRASH, (e) => {
        const err = (e.payload as { error: Error; restart?: boolean }).error;
        if (!(e.payload as { restart?: boolean }).restart) this.fail(err);
      });
      await this.consumer.connect();
      // A previous incarnation on this state directory that never left the
      // group would hold the join below until its session times out.
      await leavePreviousMember(
        this.opts.stateDir,
        this.opts.applicationId,
        readCommittedInfo(this.consumer)?.cluster,
      );
      await this.consumer.subscribe({ topics: this.subscribedTopics(), fromBeginning: true });
      const joined = new Promise<void>((resolve) => {
        const off = this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
          off();
          resolve();
        });
      });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.lock.run(() => this.onBatch(payload)),
      });
      const tick = Math.max(
        10,
        Math.min(this.opts.commitIntervalMs, (this.def.idleCloseMs ?? 1000) / 2),
      );
      this.timer = setInterval(() => void this.onTimer(), tick);
      this.timer.unref?.();
      if (this.opts.handleSignals) {
        this.onSignal = () => void this.stop();
        process.once("SIGTERM", this.onSignal);
        process.once("SIGINT", this.onSignal);
      }
      await joined;
      this.status = "open";
      publish("ready", () => ({ applicationId: this.opts.applicationId, ready: true }));
    } catch (err) {
      this.status = "closed";
      if (this.timer) clearInterval(this.timer);
      if (this.onSignal) {
        process.removeListener("SIGTERM", this.onSignal);
        process.removeListener("SIGINT", this.onSignal);
        this.onSignal = undefined;
      }
      await this.release();
      throw SluiceKafka(err, "starting the job");
    }
  }

  private async ensureTopics(): Promise<void> {
    const meta = await this.admin.fetchTopicMetadata({ topics: [this.opts.topic] }).catch((err) => {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `source topic '${this.opts.topic}' does not exist or cannot be read; create it first`,
        { cause: err },
      );
    });
    this.partitionCount = meta.topics[0]?.partitions.length ?? 0;
    if (this.partitionCount === 0) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `source topic '${this.opts.topic}' has no partitions`,
      );
    }
    await this.checkCopartitioned();
    const existing = new Set(await this.admin.listTopics());
    const wanted: { topic: string; compact: boolean }[] = [
      { topic: this.changelogTopic, compact: true },
      { topic: this.opts.dlqTopic, compact: false },
    ];
    if (this.repartitionTopic) wanted.push({ topic: this.repartitionTopic, compact: false });
    if (this.lateTopic) wanted.push({ topic: this.lateTopic, compact: false });
    for (const o of this.def.outputs)
      if (o.kind === "topic") wanted.push({ topic: o.topic, compact: false });
    for (const l of this.def.late)
      if (l.kind === "topic") wanted.push({ topic: l.topic, compact: false });
    const missing = wanted.filter(
      (w, i) => !existing.has(w.topic) && wanted.findIndex((x) => x.topic === w.topic) === i,
    );
    if (missing.length > 0) {
      await this.admin
        .createTopics({
          waitForLeaders: true,
          topics: missing.map((w) => ({
            topic: w.topic,
            numPartitions: this.partitionCount,
            replicationFactor: this.opts.replicationFactor,
            configEntries: w.compact ? [{ name: "cleanup.policy", value: "compact" }] : [],
          })),
        })
        .catch((err) => {
          // another member may have created them concurrently
          if (!/exists/i.test(String((err as Error)?.message))) throw err;
        });
      // Wait until every new partition has a leader in the metadata.
      const topics = missing.map((w) => w.topic);
      for (let i = 0; i < 50; i++) {
        const meta = await this.admin.fetchTopicMetadata({ topics }).catch(() => undefined);
        const ready =
          meta?.topics.length === topics.length &&
          meta.topics.every(
            (t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0),
          );
        if (ready) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const keyed = [...new Set(wanted.map((w) => w.topic))].filter((t) => t !== this.changelogTopic);
    const written = await this.admin.fetchTopicMetadata({ topics: keyed }).catch(() => undefined);
    // Topics whose metadata is missing are left to kafkajs's partitioner.
    for (const t of written?.topics ?? []) {
      if (t.partitions.length > 0) this.partitionsOf.set(t.name, t.partitions.length);
    }
  }

  /** Joined topics must have the source's partition count (they share its repartition topic). */
  private async checkCopartitioned(): Promise<void> {
    const others = Object.keys(this.def.sources ?? {});
    if (others.length === 0) return;
    const meta = await this.admin.fetchTopicMetadata({ topics: others }).catch((err) => {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `joined topic(s) ${others.join(", ")} do not exist or cannot be read; create them first`,
        { cause: err },
      );
    });
    for (const t of meta.topics) {
      if (t.partitions.length !== this.partitionCount) {
        throw new WindowingError(
          "WINDOWING_NOT_COPARTITIONED",
          `joined topic '${t.name}' has ${t.partitions.length} partitions but the source '${this.opts.topic}' has ${this.partitionCount}; give both the same partition count (and the same partitioner)`,
        );
      }
    }
  }

  private subscribedTopics(): string[] {
    return [
      this.opts.topic,
      ...Object.keys(this.def.sources ?? {}),
      ...(this.repartitionTopic ? [this.repartitionTopic] : []),
    ];
  }

  private unitKey(topic: string, partition: number): string {
    return `${topic}\u0000${partition}`;
  }

  /**
   * Exactly-once: the member's transactional producer, registered at once
   * (kafkajs's connect() does not register the transactional id; its first
   * transaction() does): the coordinator aborts or completes this member's
   * previous incarnation's open transaction before anything is read.
   */
  private async openTransactions(): Promise<void> {
    const info = readCommittedInfo(this.consumer);
    if (info?.filter !== "sluice") {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `exactly-once needs the kafkajs that @sluice/windowing is built on, to fence commits by group generation (${info?.reason ?? "unknown consumer"}); pass \`brokers\` rather than a \`kafka\` client from another copy of kafkajs, or use guarantee 'at-least-once'`,
      );
    }
    this.transactionalId = await memberTransactionalId(this.opts.stateDir, this.opts.applicationId);
    await this.renewProducer();
  }

  /** A new transactional producer of the member's id, registered (and fencing the previous one). */
  private async renewProducer(): Promise<void> {
    await this.txnProducer?.disconnect().catch(() => {});
    this.txnProducer = createKafkaProducer({
      kafka: this.kafka,
      config: {
        transactionalId: this.transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: this.opts.transactionTimeoutMs,
      },
    });
    await this.txnProducer.connect();
    await fence(this.txnProducer);
  }

  private async onAssignment(
    assignment: Record<string, number[]>,
    generation: GroupGeneration | undefined,
  ): Promise<void> {
    await this.lock.run(async () => {
      // Work of the previous generation commits (or is refused) first.
      await this.finishStaged();
      await this.inflight;
      this.generation = generation;
      const now = new Set<string>();
      for (const [topic, parts] of Object.entries(assignment))
        for (const p of parts) now.add(this.unitKey(topic, p));
      const revoked: number[] = [];
      for (const [k, u] of this.units) {
        if (!now.has(k)) {
          // Uncommitted work of a revoked partition is discarded: its new owner
          // restores the last committed state and replays from there.
          this.units.delete(k);
          if (u.stateful) revoked.push(u.partition);
        }
      }
      const added = [...now].filter((k) => !this.assigned.has(k));
      this.assigned = now;
      publish("rebalance", () => ({
        applicationId: this.opts.applicationId,
        assigned: added.map((k) => Number(k.split("\u0000")[1])),
        revoked,
      }));
    });
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = err;
    // Exactly-once: never continue with state that is ahead of what committed.
    process.emitWarning(
      `sluice job ${this.opts.applicationId} failed: ${(err as Error)?.message ?? err}`,
    );
    void this.stop(false);
  }

  private async unit(
    topic: string,
    partition: number,
    heartbeat: () => Promise<void>,
  ): Promise<Unit> {
    const k = this.unitKey(topic, partition);
    const existing = this.units.get(k);
    if (existing) return existing;
    // Prepare every assigned partition of this topic that has no unit yet in
    // one go: one changelog read restores them all.
    const partitions = [partition];
    for (const a of this.assigned) {
      const [t, p] = a.split("\u0000") as [string, string];
      if (t === topic && Number(p) !== partition && !this.units.has(a)) partitions.push(Number(p));
    }
    const units = partitions.map((p) => {
      const u: Unit = {
        topic,
        partition: p,
        stateful: topic === this.stateTopic,
        ready: false,
        seeks: 0,
        pending: new Map(),
        pendingCount: 0,
        dirty: false,
      };
      return u;
    });
    // The previous owner of these partitions may still have a transaction
    // open (committed before the rebalance took its generation, or killed
    // meanwhile). The restore reads the changelog read_committed up to its
    // high watermark, so it waits for that transaction to commit or abort;
    // the group's offsets are read stable for the same reason.
    if (topic === this.stateTopic) {
      const t0 = Date.now();
      const { from, folds } = await this.loadLocal(partitions);
      const restored = await readChangelog({
        kafka: this.kafka,
        admin: this.admin,
        topic: this.changelogTopic,
        partitions,
        from,
        folds,
        timeoutMs: 120_000,
        heartbeat,
      });
      for (const u of units) {
        u.engine = new PartitionEngine(this.def, u.partition);
        const r = restored.get(u.partition);
        if (r) {
          const state = r.fold.result();
          u.engine.processor.restore(state.windows, state.buffers, state.meta, state.log);
          if (state.sourceOffset !== undefined) u.nextOffset = state.sourceOffset;
          // Records read from the changelog beyond the local copy are not in
          // it: bring the copy up to the restored end first, or the next
          // checkpoint would claim a changelog offset whose records it lacks
          // (a restart would then revive windows closed in between).
          if (r.records > 0 && r.end !== undefined)
            this.rewriteLocal(u.partition, r.fold, r.end, state.sourceOffset, state.meta);
          publish("restore", () => ({
            applicationId: this.opts.applicationId,
            store: "windows",
            partition: u.partition,
            records: r.records,
            durationMs: Date.now() - t0,
          }));
        }
        u.engine.noteActivity(Date.now());
      }
    }
    const missing = units.filter((u) => u.nextOffset === undefined);
    if (missing.length > 0) {
      const committed = await withHeartbeat(
        this.committedOffsets(
          topic,
          missing.map((u) => u.partition),
        ),
        heartbeat,
      );
      for (const u of missing) {
        const off = committed.get(u.partition);
        if (off !== undefined && off !== "-1") u.nextOffset = off;
      }
      // Nothing committed yet: the partition starts at its beginning (the
      // group subscribes from the beginning). The position is always known,
      // so onBatch can refuse a batch that starts past it.
      const fresh = missing.filter((u) => u.nextOffset === undefined);
      if (fresh.length > 0) {
        const ends = await this.admin.fetchTopicOffsets(topic);
        for (const u of fresh)
          u.nextOffset = ends.find((o) => o.partition === u.partition)?.low ?? "0";
      }
    }
    for (const u of units) {
      u.committedOffset = u.nextOffset;
      u.ready = true;
      this.units.set(this.unitKey(u.topic, u.partition), u);
    }
    return this.units.get(k) as Unit;
  }

  /**
   * The group's committed offsets of `partitions`. Exactly-once reads them
   * stable (OffsetFetch with require_stable): while a transaction holding
   * an offset commit for one of them is open (the previous owner's, not yet
   * committed or aborted), it waits.
   */
  private async committedOffsets(
    topic: string,
    partitions: number[],
  ): Promise<Map<number, string>> {
    const groupId = this.opts.applicationId;
    const cluster = readCommittedInfo(this.consumer)?.cluster;
    if (this.eos && cluster) {
      const stable = await fetchStableOffsets(cluster, groupId, [{ topic, partitions }], {
        timeoutMs: this.opts.transactionTimeoutMs + 30_000,
      });
      return new Map(stable.map((o) => [o.partition, o.offset]));
    }
    const [t] = await this.admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((t?.partitions ?? []).map((o) => [o.partition, o.offset]));
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale } = payload;
    if (this.status === "closing" || this.status === "closed" || this.failure) return;
    if (!isRunning() || isStale()) return;
    // A batch fetched before a rebalance may be handed over after it: never
    // process (and fence the new owner of) a partition no longer assigned.
    if (!this.assigned.has(this.unitKey(batch.topic, batch.partition))) return;
    const u = await this.unit(batch.topic, batch.partition, heartbeat);
    const first = batch.messages[0];
    if (!first) return;
    const next = BigInt(u.nextOffset ?? "0");
    // kafkajs fetches from the group's position, which may differ from the
    // offset the restored state resumes from (the position is fetched when
    // the member joins, before the previous owner's transaction is complete,
    // and survives a unit that was dropped). Records before the state's
    // offset are skipped below; a batch that starts after it would lose
    // records, so the partition is moved back to it. batch.firstOffset()
    // counts control and aborted records, so a transactional gap is not
    // mistaken for a jump.
    const firstFetched = BigInt(batch.firstOffset() ?? first.offset);
    if (firstFetched > next) {
      if (u.seeks >= 2 && (await this.lowWatermark(u)) > next) {
        // Records between were deleted (retention): resume at the earliest.
        u.nextOffset = firstFetched.toString();
      } else {
        u.seeks++;
        this.consumer.seek({ topic: u.topic, partition: u.partition, offset: next.toString() });
        return;
      }
    }
    u.seeks = 0;
    try {
      this.throwWriteError();
      await this.processBatch(u, payload);
    } catch (err) {
      // The engine and the unit's offset may already include records whose
      // results were not queued: never keep such a unit. Its next batch
      // restores the last committed state and replays from there.
      if (this.units.get(this.unitKey(u.topic, u.partition)) === u)
        this.units.delete(this.unitKey(u.topic, u.partition));
      throw err;
    }
  }

  private async processBatch(u: Unit, payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat } = payload;
    const out: EngineOutput = { results: [], late: [], dlq: [] };
    const rekeyed: { key: string; value: unknown; timestamp: number }[] = [];
    let count = 0;
    let lastBeat = Date.now();
    const wall = Date.now();
    const messages = batch.messages;
    // Offsets rise within a batch: records before the unit's offset (already
    // in its state) are a prefix.
    let i = 0;
    if (u.nextOffset !== undefined) {
      const from = BigInt(u.nextOffset);
      while (i < messages.length && BigInt((messages[i] as { offset: string }).offset) < from) i++;
    }
    const repartitioned = u.stateful && u.topic === this.repartitionTopic;
    const repartition = this.repartitionTopic !== undefined;
    for (; i < messages.length; i++) {
      const m = messages[i] as (typeof messages)[number];
      count++;
      const key = m.key === null ? null : m.key.toString("utf8");
      if (repartitioned) {
        const env = JSON.parse((m.value ?? Buffer.from("null")).toString("utf8")) as {
          t: number;
          v: unknown;
        };
        (u.engine as PartitionEngine).processKeyed(key ?? "", env.v, env.t, m.offset, out, wall);
      } else {
        const engine = u.engine ?? this.statelessEngine(u.partition, u.topic);
        const decoded = engine.decode(m.value, key, m.offset, out);
        if (decoded.ok) {
          const r = engine.handleValue(
            decoded.value,
            key,
            Number(m.timestamp),
            m.offset,
            out,
            repartition,
            wall,
          );
          if (r) rekeyed.push(r);
        }
      }
      if ((count & 255) === 0 && Date.now() - lastBeat > 1000) {
        // kafkajs's heartbeat throws once a rebalance has started; the batch
        // is finished and committed all the same (a member that lost the
        // partition is fenced at commit), never abandoned half-way.
        await heartbeat().catch(() => {
          this.rebalancing = true;
        });
        lastBeat = Date.now();
      }
    }
    const lastOffset = (messages[messages.length - 1] as { offset: string }).offset;
    if (count > 0) u.nextOffset = (BigInt(lastOffset) + 1n).toString();
    // kafkajs fetches after the last resolved offset (nothing is committed here).
    payload.resolveOffset(lastOffset);
    u.highWatermark = batch.highWatermark;
    if (count > 0) {
      u.dirty = true;
      publish("records", () => ({
        applicationId: this.opts.applicationId,
        topic: u.topic,
        partition: u.partition,
        count,
      }));
    }
    for (const r of rekeyed) {
      this.queue(u, this.repartitionTopic as string, {
        key: r.key,
        value: JSON.stringify({ t: r.timestamp, v: r.value }),
        timestamp: String(r.timestamp),
      });
    }
    await this.deliver(u, out, heartbeat);
    this.writeOutputsEarly();
    if (this.rebalancing) {
      // On revoke the batch is committed before the group moves on.
      await this.commitAll(heartbeat);
    } else if (this.pendingTotal() >= this.opts.maxBufferedResults) {
      // Bounded: waits for the commit in flight, then starts the next.
      await this.commitAll(heartbeat, this.pipelined);
    } else if (Date.now() - this.lastCommit >= this.opts.commitIntervalMs) {
      if (!this.pipelined) await this.commitAll(heartbeat);
      else if (!this.inflight && !this.staged) {
        if (this.eos) await this.commitAll(heartbeat, true);
        else await this.stageCommit();
      }
      // else: the commit in flight is still draining or writing; a later batch or tick commits.
    }
  }

  /**
   * At-least-once: writes the records queued for the output, late and DLQ
   * topics now rather than at the next commit, so a result is visible about
   * one produce round trip after its batch (commits, every
   * `commitIntervalMs`, then write only the changelog and offsets). At most
   * MAX_EARLY_WRITES writes are in flight; records queued meanwhile go in
   * the next, started when one ends (the records held stay bounded by
   * maxBufferedResults, which commits early). The commit waits for these
   * writes before it writes the changelog and the offsets that cover them,
   * so outputs still precede the offsets that would skip them, as
   * at-least-once requires; a failed write fails the job (through the next
   * batch or commit) before any offset passes it. Records for the
   * repartition topic wait for the commit, as before.
   */
  private writeOutputsEarly(): void {
    if (this.eos || !this.aloProducer || this.status !== "open") return;
    if (this.earlyWrites.size >= MAX_EARLY_WRITES || this.writeError !== undefined) return;
    const topicMessages: TopicMessages[] = [];
    for (const u of this.units.values()) {
      if (!u.ready || u.pendingCount === 0) continue;
      for (const [topic, messages] of u.pending) {
        if (topic === this.repartitionTopic) continue;
        topicMessages.push({ topic, messages });
        u.pending.delete(topic);
        u.pendingCount -= messages.length;
      }
    }
    if (topicMessages.length === 0) return;
    const producer = this.aloProducer;
    const write: Promise<void> = Promise.all(
      chunks(topicMessages).map((c) => producer.sendBatch({ topicMessages: c })),
    )
      .then(
        () => undefined,
        (err) => {
          this.writeError ??= err;
        },
      )
      .then(() => {
        this.earlyWrites.delete(write);
        // what was queued while the writes in flight ran
        this.writeOutputsEarly();
      })
      .catch((err) => this.fail(err));
    this.earlyWrites.add(write);
  }

  /** Waits for the early output writes started so far; throws the first failure. */
  private async settleEarlyWrites(heartbeat?: () => Promise<void>): Promise<void> {
    if (this.earlyWrites.size > 0)
      await withHeartbeat(Promise.all([...this.earlyWrites]), heartbeat);
    this.throwWriteError();
  }

  private throwWriteError(): void {
    if (this.writeError === undefined) return;
    const err = this.writeError;
    this.writeError = undefined;
    throw err;
  }

  private async lowWatermark(u: Unit): Promise<bigint> {
    const ends = await this.admin.fetchTopicOffsets(u.topic);
    return BigInt(ends.find((o) => o.partition === u.partition)?.low ?? "0");
  }

  private statelessEngines = new Map<string, PartitionEngine>();

  private statelessEngine(partition: number, topic: string): PartitionEngine {
    const k = this.unitKey(topic, partition);
    let e = this.statelessEngines.get(k);
    if (!e) {
      // Only decode/filter/map/keyBy run here; windows run after the repartition hop.
      // A joined topic decodes with its own schema and steps.
      e = new PartitionEngine(this.def.sources?.[topic] ?? this.def, partition);
      this.statelessEngines.set(k, e);
    }
    return e;
  }

  private pendingTotal(): number {
    let n = 0;
    for (const u of this.units.values()) n += u.pendingCount;
    return n;
  }

  private queue(u: Unit, topic: string, message: Message): void {
    const n = this.partitionsOf.get(topic);
    if (n !== undefined && message.partition === undefined) {
      // The key's bytes, hashed here, are also what the encoder writes.
      const k = message.key;
      const key = k === null || k === undefined ? null : typeof k === "string" ? Buffer.from(k) : k;
      message.key = key;
      message.partition = this.partitioner(key, n);
    }
    let list = u.pending.get(topic);
    if (!list) {
      list = [];
      u.pending.set(topic, list);
    }
    list.push(message);
    u.pendingCount++;
    u.dirty = true;
  }

  /** Routes one step's results, late records and dead letters. */
  private async deliver(
    u: Unit,
    out: EngineOutput,
    heartbeat?: () => Promise<void>,
  ): Promise<void> {
    const app = this.opts.applicationId;
    if (out.results.length > 0) {
      for (const o of this.def.outputs) {
        if (o.kind === "topic") {
          for (const r of out.results)
            this.queue(u, o.topic, { key: r.key, value: JSON.stringify(r) });
        }
      }
      for (const o of this.def.outputs) {
        if (o.kind === "sink") await withHeartbeat(o.sink.write(out.results), heartbeat);
        else if (o.kind === "callback")
          await withHeartbeat(Promise.resolve(o.fn(out.results)), heartbeat);
      }
      const closed = out.results.filter((r) => r.final).length;
      if (closed > 0) {
        publish("windows", () => ({
          applicationId: app,
          open: u.engine?.processor.openWindows ?? 0,
          closed,
        }));
      }
    }
    if (out.late.length > 0) {
      publish("late", () => ({ applicationId: app, count: out.late.length }));
      const topics = this.lateTopic
        ? [this.lateTopic]
        : this.def.late.filter((l) => l.kind === "topic").map((l) => l.topic);
      for (const t of topics) {
        for (const l of out.late)
          this.queue(u, t, { key: l.key, value: JSON.stringify(lateJson(l)) });
      }
      for (const l of this.def.late) {
        if (l.kind === "callback") for (const r of out.late) await Promise.resolve(l.fn(r));
      }
    }
    if (out.dlq.length > 0) {
      const byCode = new Map<string, number>();
      for (const d of out.dlq) {
        byCode.set(d.code, (byCode.get(d.code) ?? 0) + 1);
        const value = Buffer.isBuffer(d.value)
          ? d.value
          : Buffer.from(JSON.stringify(d.value ?? null));
        this.queue(u, this.opts.dlqTopic, {
          key: d.key,
          value,
          headers: {
            [`${HEADER_PREFIX}error-code`]: d.code,
            [`${HEADER_PREFIX}error-reason`]: d.reason.slice(0, 4096),
            [`${HEADER_PREFIX}source-topic`]: u.topic,
            [`${HEADER_PREFIX}source-partition`]: String(u.partition),
            [`${HEADER_PREFIX}source-offset`]: d.offset ?? "",
          },
        });
      }
      for (const [code, count] of byCode)
        publish("dlq", () => ({ applicationId: app, code, count }));
    }
  }

  private async onTimer(): Promise<void> {
    if (this.status !== "open" || this.failure) return;
    await this.lock
      .run(async () => {
        if (this.status !== "open") return;
        const now = Date.now();
        for (const u of this.units.values()) {
          if (!u.engine || !u.ready) continue;
          const out: EngineOutput = { results: [], late: [], dlq: [] };
          const before = u.engine.processor.streamTime;
          u.engine.idleAdvance(now, out);
          if (u.engine.processor.streamTime !== before) u.dirty = true;
          await this.deliver(u, out);
        }
        this.writeOutputsEarly();
        if (now - this.lastCommit >= this.opts.commitIntervalMs && !this.inflight && !this.staged) {
          if (!this.pipelined) await this.commitAll();
          else if (this.eos) await this.commitAll(undefined, true);
          else await this.stageCommit();
        }
      })
      .catch((err) => this.fail(err));
  }

  /**
   * Commits every partition with changes: sinks flushed first, then one
   * transaction per partition. The previous commit's writes finish first
   * (and its failure is thrown here). With `background`, this commit's
   * writes run behind processing once its work is drained.
   */
  private async commitAll(heartbeat?: () => Promise<void>, background = false): Promise<void> {
    await this.finishStaged(heartbeat);
    if (this.inflight) await withHeartbeat(this.inflight, heartbeat);
    this.throwWriteError();
    this.lastCommit = Date.now();
    const units = this.unitsToCommit();
    if (units.length === 0) return;
    const t0 = Date.now();
    await this.flushSinks(heartbeat);
    const write = this.writeWork(
      units.map((u) => this.drainUnit(u)),
      t0,
      heartbeat,
    );
    if (!background) return write;
    this.track(write);
  }

  private unitsToCommit(): Unit[] {
    return [...this.units.values()].filter((u) => u.ready && (u.dirty || u.pendingCount > 0));
  }

  private async flushSinks(heartbeat?: () => Promise<void>): Promise<void> {
    for (const o of this.def.outputs)
      if (o.kind === "sink") await withHeartbeat(o.sink.flush(), heartbeat);
  }

  /** Takes a unit's pending records, state changes and offset at this instant. */
  private drainUnit(u: Unit): Work {
    const topicMessages: TopicMessages[] = [];
    for (const [topic, messages] of u.pending) topicMessages.push({ topic, messages });
    if (u.engine) {
      const changes = encodeMutations(u.engine.processor.drainMutations(), u.nextOffset);
      if (changes.length > 0) {
        topicMessages.push({
          topic: this.changelogTopic,
          messages: changes.map((c) => ({ key: c.key, value: c.value, partition: u.partition })),
        });
      }
      const st = u.engine.processor.streamTime;
      if (Number.isFinite(st)) {
        publish("stream-time", () => ({
          applicationId: this.opts.applicationId,
          partition: u.partition,
          streamTime: st,
        }));
      }
    }
    u.pending = new Map();
    u.pendingCount = 0;
    u.dirty = false;
    return {
      u,
      topicMessages,
      offset: u.nextOffset,
      streamTime: u.engine?.processor.streamTime ?? Number.NEGATIVE_INFINITY,
    };
  }

  /** Runs a commit's writes behind processing; its failure is thrown by the next batch or commit. */
  private track(write: Promise<void>): void {
    const tracked: Promise<void> = write.then(
      () => {},
      (err) => {
        this.writeError ??= err;
      },
    );
    this.inflight = tracked;
    void tracked.then(() => {
      if (this.inflight === tracked) this.inflight = undefined;
    });
  }

  /**
   * Starts a background commit (pipelined at-least-once jobs, no commit in
   * flight) that drains its units a few at a time: each turn drains for at
   * most stageBudgetMs (one unit at least), then leaves the lock to batches
   * until the event loop comes round again. Each unit's work is still taken at one instant
   * (its pending records, state changes and offset together), so units
   * drained at different instants commit consistently each; the writes
   * start once every unit is drained. Anything that needs the commit done
   * (commitAll: a rebalance, stop, a full buffer; an assignment) drains the
   * rest at once. Exactly-once jobs drain all at once: their results go out
   * in the commit's transactions, which would start later (measured: p99
   * 424 against 350 ms, medians of four latency runs each). At-least-once
   * results are written ahead of commits, so only the changelog and offsets
   * wait.
   */
  private async stageCommit(): Promise<void> {
    this.throwWriteError();
    this.lastCommit = Date.now();
    const units = this.unitsToCommit();
    if (units.length === 0) return;
    const s: StagedCommit = { units, next: 0, work: [], t0: Date.now() };
    this.staged = s;
    await this.stageStep(s);
  }

  private async stageStep(
    s: StagedCommit,
    all = false,
    heartbeat?: () => Promise<void>,
  ): Promise<void> {
    const until = performance.now() + stageBudgetMs;
    while (s.next < s.units.length) {
      const u = s.units[s.next++] as Unit;
      // A unit dropped meanwhile (revoked, or failed) is not ours to commit.
      if (u.ready && this.units.get(this.unitKey(u.topic, u.partition)) === u)
        s.work.push(this.drainUnit(u));
      if (!all && performance.now() >= until) break;
    }
    if (s.next < s.units.length) {
      // The next turn is taken from the event loop (setImmediate), not
      // queued straight behind the lock: it then runs while the consumer
      // waits for its next fetch, rather than in the way of that fetch.
      setImmediate(() => {
        void this.lock
          .run(async () => {
            if (this.staged === s && !this.failure) await this.stageStep(s);
          })
          .catch((err) => this.fail(err));
      });
      return;
    }
    this.staged = undefined;
    if (s.work.length === 0) return;
    await this.flushSinks(heartbeat);
    this.track(this.writeWork(s.work, s.t0, heartbeat));
  }

  /** Drains the rest of a staged commit now and starts its writes. */
  private async finishStaged(heartbeat?: () => Promise<void>): Promise<void> {
    const s = this.staged;
    if (s && !this.failure) await this.stageStep(s, true, heartbeat);
    this.staged = undefined;
  }

  /** Writes one commit's drained work and settles its units. */
  private async writeWork(
    work: Work[],
    t0: number,
    heartbeat?: () => Promise<void>,
  ): Promise<void> {
    const app = this.opts.applicationId;
    // Every unit's mutations and pending records were drained into `work`
    // above. A unit whose transaction does not commit must not stay: its
    // in-memory state and offset would run ahead of a changelog that never
    // receives those mutations, and its next commit would write a fresh
    // source offset over a state that lacks them (a later restore then
    // revives stale windows and skips the records in between).
    const settled = new Set<Unit>();
    try {
      await this.commitWork(work, settled, app, heartbeat);
    } catch (err) {
      // Dropped at once (processing may run meanwhile), closed afterwards.
      const dropped: Unit[] = [];
      for (const { u } of work) {
        if (settled.has(u)) continue;
        const k = this.unitKey(u.topic, u.partition);
        if (this.units.get(k) === u) {
          this.units.delete(k);
          dropped.push(u);
        }
      }
      throw err;
    }
    const durationMs = Date.now() - t0;
    publish("commit", () => ({
      applicationId: app,
      durationMs,
      offsets: work
        .filter((w) => w.offset !== undefined)
        .map((w) => ({ topic: w.u.topic, partition: w.u.partition, offset: w.offset as string })),
    }));
    publish("checkpoint", () => ({ applicationId: app, durationMs, partitions: work.length }));
    for (const { u } of work) {
      if (u.highWatermark !== undefined && u.nextOffset !== undefined) {
        const lag = Number(BigInt(u.highWatermark) - BigInt(u.nextOffset));
        publish("lag", () => ({ applicationId: app, topic: u.topic, partition: u.partition, lag }));
      }
    }
  }

  /** Writes drained work: one transaction per unit (exactly-once) or outputs, changelog, offsets (at-least-once). */
  private async commitWork(
    work: Work[],
    settled: Set<Unit>,
    app: string,
    heartbeat?: () => Promise<void>,
  ): Promise<void> {
    if (this.eos) {
      await withHeartbeat(this.commitTransaction(work, settled, app), heartbeat);
    } else {
      // At-least-once: outputs first, then the changelog (which carries the
      // source offset restore resumes from), then the group offsets. A crash
      // in between replays records whose outputs were already sent (same
      // identities), never the other way round.
      const all: TopicMessages[] = work.flatMap((w) => w.topicMessages);
      const outputs = all.filter((t) => t.topic !== this.changelogTopic);
      const changelog = all.filter((t) => t.topic === this.changelogTopic);
      const producer = this.aloProducer as Producer;
      await withHeartbeat(
        Promise.all(chunks(outputs).map((c) => producer.sendBatch({ topicMessages: c }))),
        heartbeat,
      );
      // Outputs written ahead of this commit (writeOutputsEarly) are acknowledged too.
      await this.settleEarlyWrites(heartbeat);
      // In order, one request after another: a partition's deletions of
      // changelog entries come after its new entries, metadata and source
      // offset (see encodeMutations), so a crash part-way never leaves the
      // stored offset with state missing.
      const sent = await withHeartbeat(
        (async () => {
          const done: { c: TopicMessages[]; meta: RecordMetadata[] }[] = [];
          for (const c of chunks(changelog))
            done.push({ c, meta: await producer.sendBatch({ topicMessages: c }) });
          return done;
        })(),
        heartbeat,
      );
      const changelogNext = this.changelogEnds(sent, work);
      const offsets = work
        .filter((w) => w.offset !== undefined)
        .map((w) => ({
          topic: w.u.topic,
          partition: w.u.partition,
          offset: w.offset as string,
        }));
      if (offsets.length > 0) {
        try {
          await this.consumer.commitOffsets(offsets);
        } catch (err) {
          // A rebalance in progress rejects the commit; the offsets are
          // committed next time (or replayed by the new owner: at-least-once).
          // A stopped consumer (stop() after its last batch) commits nothing:
          // the changelog carries the source offset a restart resumes from.
          const msg = String((err as Error)?.message);
          if (!/rebalanc|generation|member|coordinator|not initialized/i.test(msg)) throw err;
        }
      }
      this.settle(work, settled, changelogNext);
    }
  }

  /** Marks committed work settled and brings the local copies of its partitions up to it. */
  private settle(work: readonly Work[], settled: Set<Unit>, changelogNext: Map<number, bigint>) {
    for (const w of work) {
      settled.add(w.u);
      w.u.committedOffset = w.offset;
      if (w.u.engine) {
        const next = changelogNext.get(w.u.partition);
        this.persistLocal(w.u, w.topicMessages, next, w.offset, w.streamTime);
      }
    }
  }

  /**
   * Exactly-once: one transaction for all of the commit's units: outputs,
   * changelog records and offsets, the offsets fenced by the generation the
   * units were assigned in. The group refuses them once a rebalance has
   * moved on: the transaction aborts and the units are dropped (their new
   * owner, or this member's next batch, restores the last committed state).
   */
  private async commitTransaction(work: Work[], settled: Set<Unit>, app: string): Promise<void> {
    const producer = this.txnProducer as KafkaProducer;
    const generation = this.generation;
    const byTopic = new Map<string, { partition: number; offset: string }[]>();
    for (const { u, offset } of work) {
      if (offset === undefined) continue;
      const list = byTopic.get(u.topic) ?? [];
      list.push({ partition: u.partition, offset });
      byTopic.set(u.topic, list);
    }
    if (!generation || byTopic.size === 0) {
      // Unfenced writes are never made: a unit has a position once it is
      // ready, and ready units exist only after an assignment.
      throw new WindowingError(
        "WINDOWING_KAFKA_FAILED",
        "exactly-once commit without a group generation or an offset to fence it with",
      );
    }
    const txn = await producer.transaction();
    const sent: { c: TopicMessages[]; meta: RecordMetadata[] }[] = [];
    try {
      for (const c of chunks(work.flatMap((w) => w.topicMessages)))
        sent.push({ c, meta: await txn.sendBatch({ topicMessages: c }) });
      await sendOffsetsFenced(
        producer,
        txn,
        {
          consumerGroupId: app,
          topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
        },
        generation,
      );
      await txn.commit();
    } catch (err) {
      let epochOver = isProducerFenced(err);
      if (!epochOver) {
        try {
          await txn.abort();
        } catch (abortErr) {
          epochOver = isProducerFenced(abortErr);
          // The producer is left mid-transaction: nothing more can commit.
          if (!epochOver) this.fail(SluiceKafka(abortErr, "aborting a refused transaction"));
        }
      }
      if (!epochOver && !isGroupFenced(err)) throw err;
      // This member's generation is over (the units are another member's
      // now, or are restored again at the next assignment), or its
      // transaction outlived the timeout and the coordinator aborted it: the
      // units' uncommitted work is dropped either way.
      for (const { u } of work) {
        settled.add(u);
        const k = this.unitKey(u.topic, u.partition);
        if (this.units.get(k) === u) this.units.delete(k);
      }
      publish("commit-refused", () => ({
        applicationId: app,
        reason: epochOver ? "producer-fenced" : "generation-over",
        partitions: work.map((w) => w.u.partition),
      }));
      if (epochOver) await this.renewProducer();
      return;
    }
    this.settle(work, settled, this.changelogEnds(sent, work));
  }

  /** Offset after the last changelog record of each unit's partition in the chunks sent. */
  private changelogEnds(
    sent: readonly { c: TopicMessages[]; meta: RecordMetadata[] }[],
    work: readonly Work[],
  ): Map<number, bigint> {
    const ends = new Map<number, bigint>();
    for (const { c, meta } of sent) {
      for (const { u } of work) {
        if (!u.engine) continue;
        const end = this.changelogEnd(c, meta, u.partition);
        const prev = ends.get(u.partition);
        if (end !== undefined && (prev === undefined || end > prev)) ends.set(u.partition, end);
      }
    }
    return ends;
  }

  async stop(graceful = true): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.status === "closed" && !this.consumer) return;
    this.stopping = (async () => {
      this.status = "closing";
      if (this.timer) clearInterval(this.timer);
      if (this.onSignal) {
        process.removeListener("SIGTERM", this.onSignal);
        process.removeListener("SIGINT", this.onSignal);
      }
      try {
        // A commit running behind processing finishes while the consumer
        // still runs (at-least-once commits its offsets through it); none
        // starts once closing.
        await this.inflight;
        if (this.eos && graceful && !this.failure && this.consumer) {
          // Exactly-once commits while still a member of the group: its
          // offsets are fenced by the member's generation, which stop()
          // ends (the consumer leaves the group). Batches fetched meanwhile
          // are not processed (closing), and no more are fetched.
          this.consumer.pause(this.subscribedTopics().map((topic) => ({ topic })));
          await this.lock.run(() => this.commitAll());
          await this.consumer.stop();
        } else {
          await this.consumer?.stop();
        }
        if (graceful && !this.failure) {
          if (!this.eos) await this.lock.run(() => this.commitAll());
        } else {
          // A staged commit not yet writing is abandoned, as any uncommitted work.
          this.staged = undefined;
          await this.inflight;
        }
      } finally {
        for (const o of this.def.outputs)
          if (o.kind === "sink") await o.sink.close().catch(() => {});
        await this.release();
        this.status = "closed";
        publish("ready", () => ({ applicationId: this.opts.applicationId, ready: false }));
      }
    })();
    return this.stopping;
  }

  /** Offset after the last changelog record of `partition` in a sent chunk. */
  private changelogEnd(
    chunk: TopicMessages[],
    meta: RecordMetadata[],
    partition: number,
  ): bigint | undefined {
    let n = 0;
    for (const t of chunk) {
      if (t.topic !== this.changelogTopic) continue;
      for (const m of t.messages) if (m.partition === partition) n++;
    }
    if (n === 0) return undefined;
    const rm = meta.find((x) => x.topicName === this.changelogTopic && x.partition === partition);
    if (rm?.baseOffset === undefined) return undefined;
    return BigInt(rm.baseOffset) + BigInt(n);
  }

  /**
   * After a commit, applies the partition's changelog entries to the local
   * LevelDB copy and checkpoints it with the changelog offset it reflects, in
   * the background (one chain per partition). A restart then replays only the
   * changelog after that offset. The copy is never ahead of what committed.
   */
  private persistLocal(
    u: Unit,
    topicMessages: TopicMessages[],
    changelogNext: bigint | undefined,
    offset: string | undefined,
    st: number,
  ): void {
    const store = this.store;
    if (!store || changelogNext === undefined || this.localBroken.has(u.partition)) return;
    const entries = topicMessages
      .filter((t) => t.topic === this.changelogTopic)
      .flatMap((t) => t.messages)
      .map((m) => [String(m.key), (m.value ?? null) as Buffer | null] as const);
    const partition = u.partition;
    const sourceOffset = offset ?? "0";
    const prev = this.localChain.get(partition) ?? Promise.resolve();
    const next = prev.then(async () => {
      if (store.status !== "open") return;
      const ps = store.partition(partition);
      for (const [k, v] of entries) {
        if (v === null) ps.deleteSync(k);
        else ps.putSync(k, v);
      }
      await store.checkpoint({
        partition,
        sourceOffset,
        streamTime: Number.isFinite(st) ? st : 0,
        changelogOffset: changelogNext.toString(),
      });
    });
    this.localChain.set(
      partition,
      next.catch((err) => this.dropLocal(partition, err)),
    );
  }

  /**
   * The local copy only shortens restores. Once one update of it failed it
   * is wiped and not written again until the partition is restored anew
   * (later checkpoints would otherwise describe a copy with a hole).
   */
  private dropLocal(partition: number, err: unknown): Promise<void> {
    process.emitWarning(
      `sluice: local state of partition ${partition} not saved: ${(err as Error)?.message}`,
    );
    this.localBroken.add(partition);
    return this.store?.wipe(partition).catch(() => {}) ?? Promise.resolve();
  }

  /** Replaces a partition's local copy with a restored state, checkpointed at the changelog offset `end`. */
  private rewriteLocal(
    partition: number,
    fold: ChangelogFold,
    end: bigint,
    sourceOffset: string | undefined,
    meta: { streamTime: number | null } | undefined,
  ): void {
    const store = this.store;
    if (!store) return;
    this.localBroken.delete(partition);
    const entries = [...fold.entries()];
    const prev = this.localChain.get(partition) ?? Promise.resolve();
    const next = prev.then(async () => {
      if (store.status !== "open") return;
      await store.wipe(partition);
      const ps = store.partition(partition);
      for (const [k, v] of entries) if (v !== null) ps.putSync(k, v);
      await store.checkpoint({
        partition,
        sourceOffset: sourceOffset ?? "0",
        streamTime: meta?.streamTime ?? 0,
        changelogOffset: end.toString(),
      });
    });
    this.localChain.set(
      partition,
      next.catch((err) => this.dropLocal(partition, err)),
    );
  }

  /** Local copies usable for a delta restore: their entries and changelog offsets. */
  private async loadLocal(
    partitions: readonly number[],
  ): Promise<{ from: Map<number, bigint>; folds: Map<number, ChangelogFold> }> {
    const from = new Map<number, bigint>();
    const folds = new Map<number, ChangelogFold>();
    const store = this.store;
    if (!store) return { from, folds };
    const ends = await this.admin.fetchTopicOffsets(this.changelogTopic);
    for (const p of partitions) {
      await this.localChain.get(p);
      const cp = await store.readCheckpoint(p);
      const high = ends.find((o) => o.partition === p)?.high;
      if (
        !cp ||
        cp.changelogOffset === undefined ||
        high === undefined ||
        BigInt(cp.changelogOffset) > BigInt(high)
      ) {
        if (cp) await store.wipe(p);
        continue;
      }
      const fold = new ChangelogFold();
      for await (const [k, v] of store.partition(p).entries()) fold.apply(Buffer.from(k), v);
      folds.set(p, fold);
      from.set(p, BigInt(cp.changelogOffset));
    }
    return { from, folds };
  }

  private async release(): Promise<void> {
    await this.inflight;
    await this.consumer?.disconnect().catch(() => {});
    await this.memberKeeper?.flush();
    await this.txnProducer?.disconnect().catch(() => {});
    this.units.clear();
    await this.aloProducer?.disconnect().catch(() => {});
    await Promise.all([...this.localChain.values()]).catch(() => {});
    await this.store?.close().catch(() => {});
    await this.admin?.disconnect().catch(() => {});
  }
}

/**
 * At-least-once: output writes in flight ahead of commits; the idempotent
 * producer keeps up to 5 requests in flight per broker.
 */
const MAX_EARLY_WRITES = 4;

/**
 * Splits messages into requests of at most ~`maxBytes` (the broker rejects a
 * record batch above `message.max.bytes`, 1 MiB by default).
 */
function chunks(
  topicMessages: readonly TopicMessages[],
  maxBytes = 512 * 1024,
  maxMessages = 1000,
): TopicMessages[][] {
  // kafkajs groups a request's messages per partition in quadratic time (a
  // copy of the partition's list per message) when they reach it one by one
  // (messages without a partition, whose topic's partition count is
  // unknown): requests are capped by message count, low enough that the
  // copying stays small. Messages that carry their partition reach kafkajs
  // one per partition, where a higher cap measured no faster.
  const out: TopicMessages[][] = [];
  let current: TopicMessages[] = [];
  let bytes = 0;
  let n = 0;
  for (const tm of topicMessages) {
    let part: Message[] = [];
    for (const m of tm.messages) {
      const size = 64 + len(m.key) + len(m.value);
      if (
        (bytes + size > maxBytes || n >= maxMessages) &&
        (part.length > 0 || current.length > 0)
      ) {
        if (part.length > 0) current.push({ topic: tm.topic, messages: part });
        out.push(current);
        current = [];
        part = [];
        bytes = 0;
        n = 0;
      }
      part.push(m);
      bytes += size;
      n++;
    }
    if (part.length > 0) current.push({ topic: tm.topic, messages: part });
  }
  if (current.length > 0) out.push(current);
  return out;
}

function len(v: Message["key"] | Message["value"]): number {
  if (v === null || v === undefined) return 0;
  return typeof v === "string" ? Buffer.byteLength(v) : v.length;
}

function lateJson(l: LateRecord<unknown>): Record<string, unknown> {
  return { ...l };
}

/** Registers a transactional producer's id with its coordinator, fencing any previous user of it. */
async function fence(producer: Producer | undefined): Promise<void> {
  if (!producer) return;
  const txn = await producer.transaction();
  await txn.abort();
}

async function withHeartbeat<T>(p: Promise<T>, heartbeat?: () => Promise<void>): Promise<T> {
  if (!heartbeat) return p;
  const t = setInterval(() => void heartbeat().catch(() => {}), 1000);
  try {
    return await p;
  } finally {
    clearInterval(t);
  }
}

function SluiceKafka(err: unknown, what: string): unknown {
  if (WindowingError.isInstance(err)) return err;
  return new WindowingError(
    "WINDOWING_KAFKA_FAILED",
    `Kafka failed while ${what}: ${(err as Error)?.message ?? err}`,
    {
      cause: err,
    },
  );
}

export type { WindowResult };
