import type { ResolvedJobOptions } from "../job.js";
import type { JobDefinition } from "./definition.js";

export class KafkaRuntime {
  status: "opening" | "open" | "closing" | "closed" = "closed";
  constructor(
    readonly def: JobDefinition,
    readonly opts: ResolvedJobOptions,
  ) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}
