// The peers benchmark's job on Sluice (@sluice/windowing, from source): per
// user (the record key), a tumbling one-minute window with no grace, counting
// events and summing `amount`; final results only, exactly-once, LevelDB
// state with its changelog topic. Event time is the `ts` field of the value.
// Values are decoded with plain JSON.parse, as the peer programs do (no schema
// validation on any engine).
//
// Configuration comes from environment variables set by bench/suites/peers.ts:
// PEERS_BROKERS, PEERS_INPUT, PEERS_OUTPUT, PEERS_APP_ID, PEERS_STATE_DIR,
// PEERS_COMMIT_MS. Prints "FIRST <epoch ms>" when the first record is
// processed and "READY" once the consumer has joined its group.
import { count, createJob, sum, tumbling } from "@sluice/windowing";

interface BenchEvent {
  user_id: string;
  ts: number;
  amount: number;
}

function env(name: string, fallback?: string): string {
  const v = process.env[name];
  if (v) return v;
  if (fallback === undefined) throw new Error(`${name} is required`);
  return fallback;
}

const json = { decode: (bytes: Buffer): BenchEvent => JSON.parse(bytes.toString("utf8")) };

let first = false;
const job = createJob<BenchEvent>({
  brokers: env("PEERS_BROKERS", "127.0.0.1:9092").split(","),
  applicationId: env("PEERS_APP_ID"),
  source: { topic: env("PEERS_INPUT"), schema: json, eventTime: "ts" },
  stateDir: env("PEERS_STATE_DIR"),
  guarantee: "exactly-once",
  commitIntervalMs: Number(env("PEERS_COMMIT_MS", "100")),
})
  .map((e) => {
    if (!first) {
      first = true;
      process.stdout.write(`FIRST ${Date.now()}\n`);
    }
    return e;
  })
  .window(tumbling({ size: "1m" }))
  .aggregate({ count: count(), sum: sum((e: BenchEvent) => e.amount) })
  .emit("final")
  .to({ topic: env("PEERS_OUTPUT") });

await job.start();
process.stdout.write("READY\n");
