/**
 * Addresses of the services the pipeline and the tests talk to. Each comes
 * from its `SLUICE_*` environment variable, defaulting to the local stack
 * (`npm run stack:up`) on loopback.
 */
export const env = {
  kafkaBrokers: (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean),
  clickhouseUrl: process.env.SLUICE_CLICKHOUSE_URL ?? "http://127.0.0.1:8123",
  redisUrl: process.env.SLUICE_REDIS_URL ?? "redis://127.0.0.1:6379",
};

/** A name no other test or run uses: `<prefix>_<time>_<random>`, safe as a topic, table or key. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}
