// Entry of one runWorkers member process. It receives an `init` message,
// imports the user's module, builds the job with the exported factory,
// starts it (joining the consumer group) and reports back; on `stop`,
// SIGTERM/SIGINT or a lost parent it drains the job and exits 0. A job that
// fails at run time makes the member exit 1 with the reason reported first.
import diagnostics from "node:diagnostics_channel";
import path from "node:path";
import type { WorkerContext } from "../workers.js";
import {
  type MemberMessage,
  type ParentMessage,
  toWireError,
  type WireError,
} from "./worker-protocol.js";

type JobLike = {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly status: string;
  readonly options?: { stateDir?: string } | undefined;
};

type Init = Extract<ParentMessage, { type: "init" }>;

// Codes that mean the job definition itself is wrong: restarting cannot help.
const fatalCodes = new Set([
  "WINDOWING_INVALID_OPTIONS",
  "WINDOWING_PIPELINE_INCOMPLETE",
  "WINDOWING_ALREADY_STARTED",
  "WINDOWING_JOB_CLOSED",
]);

let job: JobLike | undefined;
let stopping = false;
let exiting = false;
let records = 0;
let lastWarning: string | undefined;
let poll: ReturnType<typeof setInterval> | undefined;

function send(msg: MemberMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    try {
      process.send(msg, undefined, {}, () => resolve());
    } catch {
      resolve();
    }
  });
}

async function exit(code: number, msg?: MemberMessage): Promise<never> {
  exiting = true;
  if (poll) clearInterval(poll);
  if (msg) await send(msg);
  process.exit(code);
}

function wire(err: unknown, prefix?: string): WireError {
  const w = toWireError(err);
  if (prefix) w.message = `${prefix}: ${w.message}`;
  return w;
}

function fatal(message: string): Promise<never> {
  return exit(78, {
    type: "fatal",
    error: { name: "WindowingError", code: "WINDOWING_WORKER_FAILED", message },
  });
}

function isJob(value: unknown): value is JobLike {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as JobLike).start === "function" &&
    typeof (value as JobLike).stop === "function" &&
    "status" in value
  );
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(path.resolve(parent), path.resolve(child));
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

async function init(cfg: Init): Promise<void> {
  const ctx: WorkerContext = {
    member: cfg.member,
    workers: cfg.workers,
    incarnation: cfg.incarnation,
    stateDir: cfg.stateDir,
    args: cfg.args,
  };
  let built: unknown;
  try {
    const mod = (await import(cfg.module)) as Record<string, unknown>;
    const factory = mod[cfg.exportName];
    if (typeof factory !== "function") {
      return void (await fatal(
        `${cfg.module} has no exported function ${JSON.stringify(cfg.exportName)} (found ${typeof factory}); export a factory (ctx) => createJob(...)...`,
      ));
    }
    built = await (factory as (c: WorkerContext) => unknown)(ctx);
  } catch (err) {
    return void (await exit(78, {
      type: "fatal",
      error: wire(err, `loading ${cfg.module} or building the job`),
    }));
  }
  if (!isJob(built)) {
    return void (await fatal(
      `the factory ${JSON.stringify(cfg.exportName)} of ${cfg.module} must return a Job from createJob(...); got ${built === null ? "null" : typeof built}`,
    ));
  }
  const stateDir = built.options?.stateDir;
  if (typeof stateDir === "string" && !inside(stateDir, cfg.stateDir)) {
    return void (await fatal(
      `member ${cfg.member}'s job uses stateDir ${stateDir}; members must not share state directories — pass ctx.stateDir (${cfg.stateDir}) to createJob`,
    ));
  }
  job = built;
  try {
    await job.start();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && fatalCodes.has(code)) {
      return void (await exit(78, { type: "fatal", error: wire(err, "starting the job") }));
    }
    return void (await exit(1, { type: "error", error: wire(err, "starting the job") }));
  }
  if (stopping) return;
  await send({ type: "ready" });
  poll = setInterval(() => void tick(), 250);
}

let lastProgress = "";

async function tick(): Promise<void> {
  if (!job || exiting) return;
  const jobStatus = job.status;
  if (jobStatus === "closed" && !stopping) {
    // The runtime failed and closed itself (it never continues with state
    // ahead of what committed): exit so the supervisor restarts this member.
    await exit(1, {
      type: "error",
      error: {
        name: "WindowingError",
        message: `the job closed unexpectedly${lastWarning ? `: ${lastWarning}` : ""}`,
      },
    });
    return;
  }
  const msg: MemberMessage = {
    type: "progress",
    jobStatus,
    records,
  };
  const key = JSON.stringify(msg);
  if (key !== lastProgress) {
    lastProgress = key;
    await send(msg);
  }
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await send({ type: "stopping" });
  try {
    await job?.stop();
  } catch (err) {
    await exit(1, { type: "error", error: wire(err, "stopping the job") });
  }
  if (poll) clearInterval(poll);
  await send({
    type: "progress",
    jobStatus: "closed",
    records,
  });
  await exit(0, { type: "stopped" });
}

diagnostics.subscribe("sluice:job:records", (m) => {
  const c = (m as { count?: unknown }).count;
  if (typeof c === "number") records += c;
});
process.on("warning", (w) => {
  lastWarning = w.message;
});
process.on("uncaughtException", (err) => {
  void exit(1, { type: "error", error: wire(err, "uncaught exception") });
});
process.on("unhandledRejection", (err) => {
  void exit(1, { type: "error", error: wire(err, "unhandled rejection") });
});
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
// The parent went away: drain rather than linger as an orphan.
process.on("disconnect", () => void stop());
process.on("message", (msg: ParentMessage) => {
  if (msg?.type === "init" && !job) void init(msg);
  else if (msg?.type === "stop") void stop();
});
if (!process.send) {
  process.stderr.write(
    "this is a runWorkers member entry; it runs only as a child of runWorkers\n",
  );
  process.exit(64);
}
