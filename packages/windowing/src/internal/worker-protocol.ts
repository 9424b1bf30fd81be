// Messages between the runWorkers parent and its member processes (IPC,
// advanced serialization). Kept tiny: the parent never sees records.

/** A serialized error: enough to rebuild a readable cause in the parent. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/** Parent → member. */
export type ParentMessage =
  | {
      type: "init";
      /** file: URL of the user module. */
      module: string;
      exportName: string;
      member: number;
      workers: number;
      incarnation: number;
      stateDir: string;
      args: unknown;
    }
  | { type: "stop" };

/** Member → parent. */
export type MemberMessage =
  /** The job is built and `start()` resolved (the member joined the group). */
  | { type: "ready" }
  /** Periodic progress: job status and records processed so far. */
  | { type: "progress"; jobStatus: string; records: number }
  /** The module or the job definition is unusable: do not restart. */
  | { type: "fatal"; error: WireError }
  /** The job failed at run time (restartable), just before the member exits. */
  | { type: "error"; error: WireError }
  /** A graceful drain began / finished (state, outputs, offsets committed). */
  | { type: "stopping" }
  | { type: "stopped" };

export function toWireError(err: unknown): WireError {
  if (err instanceof Error) {
    const out: WireError = { name: err.name, message: err.message };
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string") out.code = code;
    if (err.stack) out.stack = err.stack;
    return out;
  }
  return { name: "Error", message: String(err) };
}

export function describeWireError(e: WireError): string {
  return `${e.name}${e.code ? ` ${e.code}` : ""}: ${e.message}`;
}

export function isMemberMessage(m: unknown): m is MemberMessage {
  return (
    typeof m === "object" &&
    m !== null &&
    typeof (m as { type?: unknown }).type === "string" &&
    ["ready", "progress", "fatal", "error", "stopping", "stopped"].includes(
      (m as { type: string }).type,
    )
  );
}
