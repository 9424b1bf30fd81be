"""The peers benchmark's job on Quix Streams.

Per user (the message key), a tumbling one-minute window with no grace,
counting events and summing ``amount``; only final results are emitted
(windows close on the partition's stream time), processing_guarantee
"exactly-once", RocksDB state. Event time is the ``ts`` field of the JSON
value.

Configuration comes from environment variables set by bench/suites/peers.ts:
PEERS_BROKERS, PEERS_INPUT, PEERS_OUTPUT, PEERS_APP_ID, PEERS_STATE_DIR,
PEERS_COMMIT_MS. Prints "FIRST <epoch ms>" when the first record is
processed.
"""

import os
import sys
import time

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum


def env(name, fallback=None):
    value = os.environ.get(name)
    if not value:
        if fallback is None:
            raise SystemExit(f"{name} is required")
        return fallback
    return value


def event_time(value, headers, timestamp, timestamp_type):
    ts = value.get("ts") if isinstance(value, dict) else None
    return ts if isinstance(ts, int) else timestamp


def main():
    app = Application(
        broker_address=env("PEERS_BROKERS", "127.0.0.1:9092"),
        consumer_group=env("PEERS_APP_ID"),
        state_dir=env("PEERS_STATE_DIR"),
        processing_guarantee="exactly-once",
        commit_interval=int(env("PEERS_COMMIT_MS", "100")) / 1000.0,
        auto_offset_reset="earliest",
        loglevel="WARNING",
    )
    source = app.topic(
        env("PEERS_INPUT"),
        key_deserializer="str",
        value_deserializer="json",
        timestamp_extractor=event_time,
    )
    sink = app.topic(env("PEERS_OUTPUT"), key_serializer="str", value_serializer="json")

    seen = [False]

    def mark_first(value):
        if not seen[0]:
            seen[0] = True
            print(f"FIRST {int(time.time() * 1000)}", flush=True)

    sdf = app.dataframe(source)
    sdf = sdf.update(mark_first)
    sdf = (
        sdf.tumbling_window(duration_ms=60_000, grace_ms=0)
        .agg(count=Count(), sum=Sum("amount"))
        .final(closing_strategy="partition")
    )
    sdf.to_topic(sink)
    print("READY", flush=True)
    app.run()


if __name__ == "__main__":
    sys.exit(main())
