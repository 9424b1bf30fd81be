import type { Kafka } from "kafkajs";
import type { PipelineConfig } from "../pipeline/config.js";
import type { PipelineCounters } from "../pipeline/results.js";
import { countCommittedRecords } from "../pipeline/topic-count.js";

/**
 * The committed records of each windowing job's (every job but the raw-events
 * copy, which has no dead-letter or late topic) dead-letter (`<app>-dlq`) and
 * late (`<app>-late`) topics, as `verify` takes them. Counted from the topics,
 * not from a process's counters, so they survive crashed and restarted instances.
 *
 * @param kafka - a kafkajs client of the deployment's cluster
 * @param c - the deployment
 * @returns DLQ and late counts per job application id
 */
export async function countDlqAndLate(kafka: Kafka, c: PipelineConfig): Promise<PipelineCounters> {
  const counters: PipelineCounters = { dlq: {}, late: {} };
  const jobs = Object.entries(c.applications).filter(([job]) => job !== "raw");
  for (const [, app] of jobs) {
    counters.dlq[app] = await countCommittedRecords(kafka, `${app}-dlq`);
    counters.late[app] = await countCommittedRecords(kafka, `${app}-late`);
  }
  return counters;
}
