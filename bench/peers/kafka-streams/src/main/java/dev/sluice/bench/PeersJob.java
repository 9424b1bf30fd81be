package dev.sluice.bench;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The peers benchmark's job on Kafka Streams: per user (the record key), a
 * tumbling one-minute window with no grace, counting events and summing
 * {@code amount}; only final results are emitted (suppress until the window
 * closes), processing.guarantee=exactly_once_v2, default RocksDB window store.
 * Event time is the {@code ts} field of the JSON value.
 *
 * <p>Configuration comes from environment variables set by bench/suites/peers.ts:
 * PEERS_BROKERS, PEERS_INPUT, PEERS_OUTPUT, PEERS_APP_ID, PEERS_STATE_DIR,
 * PEERS_COMMIT_MS, PEERS_THREADS. Prints "FIRST &lt;epoch ms&gt;" when the first
 * record is processed and "READY" once the instance is RUNNING.
 */
public final class PeersJob {
  private static final ObjectMapper JSON =
      new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  /** The fields of an input event the job uses. */
  public static final class Event {
    public String user_id;
    public long ts;
    public long amount;
  }

  /** Running aggregate of a window: event count and amount sum. */
  public static final class Agg {
    long count;
    long sum;
  }

  static final class EventDeserializer implements Deserializer<Event> {
    @Override
    public Event deserialize(String topic, byte[] data) {
      if (data == null) return null;
      try {
        return JSON.readValue(data, Event.class);
      } catch (java.io.IOException e) {
        throw new org.apache.kafka.common.errors.SerializationException(e);
      }
    }
  }

  static final class EventSerializer implements Serializer<Event> {
    @Override
    public byte[] serialize(String topic, Event data) {
      try {
        return data == null ? null : JSON.writeValueAsBytes(data);
      } catch (java.io.IOException e) {
        throw new org.apache.kafka.common.errors.SerializationException(e);
      }
    }
  }

  static final class AggSerializer implements Serializer<Agg> {
    @Override
    public byte[] serialize(String topic, Agg a) {
      if (a == null) return null;
      return ByteBuffer.allocate(16).putLong(a.count).putLong(a.sum).array();
    }
  }

  static final class AggDeserializer implements Deserializer<Agg> {
    @Override
    public Agg deserialize(String topic, byte[] data) {
      if (data == null) return null;
      ByteBuffer b = ByteBuffer.wrap(data);
      Agg a = new Agg();
      a.count = b.getLong();
      a.sum = b.getLong();
      return a;
    }
  }

  /** Event time from the decoded value's {@code ts}; the record timestamp otherwise. */
  public static final class EventTimeExtractor implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      Object v = record.value();
      if (v instanceof Event) return ((Event) v).ts;
      return record.timestamp();
    }
  }

  private static String env(String name, String fallback) {
    String v = System.getenv(name);
    if (v == null || v.isEmpty()) {
      if (fallback == null) throw new IllegalArgumentException(name + " is required");
      return fallback;
    }
    return v;
  }

  public static void main(String[] args) throws Exception {
    String brokers = env("PEERS_BROKERS", "127.0.0.1:9092");
    String input = env("PEERS_INPUT", null);
    String output = env("PEERS_OUTPUT", null);
    String appId = env("PEERS_APP_ID", null);
    String stateDir = env("PEERS_STATE_DIR", null);
    String commitMs = env("PEERS_COMMIT_MS", "100");
    String threads = env("PEERS_THREADS", "1");

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitMs);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

    Serde<Event> eventSerde = Serdes.serdeFrom(new EventSerializer(), new EventDeserializer());
    Serde<Agg> aggSerde = Serdes.serdeFrom(new AggSerializer(), new AggDeserializer());
    AtomicBoolean first = new AtomicBoolean(false);

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(
            input,
            Consumed.with(Serdes.String(), eventSerde)
                .withTimestampExtractor(new EventTimeExtractor()))
        .peek(
            (k, v) -> {
              if (!first.get() && first.compareAndSet(false, true)) {
                System.out.println("FIRST " + System.currentTimeMillis());
                System.out.flush();
              }
            })
        .groupByKey(Grouped.with(Serdes.String(), eventSerde))
        .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMinutes(1)))
        .aggregate(
            Agg::new,
            (key, event, agg) -> {
              agg.count += 1;
              agg.sum += event.amount;
              return agg;
            },
            // Retention well above the window size: the window store keeps one RocksDB
            // segment per retention/2, so a one-minute retention would open a new
            // RocksDB instance per task every event-time minute.
            Materialized.<String, Agg, WindowStore<Bytes, byte[]>>with(Serdes.String(), aggSerde)
                .withRetention(Duration.ofHours(1)))
        .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
        .toStream()
        .map(
            (wk, agg) -> {
              String key = wk.key();
              String json =
                  "{\"key\":"
                      + JSON.valueToTree(key).toString()
                      + ",\"start\":"
                      + wk.window().start()
                      + ",\"end\":"
                      + wk.window().end()
                      + ",\"count\":"
                      + agg.count
                      + ",\"sum\":"
                      + agg.sum
                      + "}";
              return KeyValue.pair(key, json);
            })
        .to(output, Produced.with(Serdes.String(), Serdes.String()));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch done = new CountDownLatch(1);
    streams.setStateListener(
        (next, prev) -> {
          if (next == KafkaStreams.State.RUNNING) {
            System.out.println("READY");
            System.out.flush();
          }
          if (next == KafkaStreams.State.ERROR || next == KafkaStreams.State.NOT_RUNNING) {
            done.countDown();
          }
        });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  streams.close(Duration.ofSeconds(20));
                  done.countDown();
                }));
    streams.start();
    done.await();
  }
}
