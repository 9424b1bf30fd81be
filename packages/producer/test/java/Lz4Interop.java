// The Java client's side of the lz4 interoperability test
// (lz4-interop.integration.test.ts), run as a single-file source program:
//   java -cp '<kafka jars>/*' Lz4Interop.java produce <brokers> <topic> <count>
//   java -cp '<kafka jars>/*' Lz4Interop.java consume <brokers> <topic> <count>
// `produce` writes `count` lz4-compressed records whose values are `java-<i>`;
// `consume` reads `count` records from the beginning and prints each value on a
// line of its own, then exits (non-zero after 60 s without all of them).
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Lz4Interop {
  public static void main(String[] args) throws Exception {
    String mode = args[0], brokers = args[1], topic = args[2];
    int count = Integer.parseInt(args[3]);
    if (mode.equals("produce")) produce(brokers, topic, count);
    else consume(brokers, topic, count);
  }

  static void produce(String brokers, String topic, int count) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", brokers);
    p.put("compression.type", "lz4");
    p.put("linger.ms", "20");
    p.put("acks", "all");
    p.put("key.serializer", StringSerializer.class.getName());
    p.put("value.serializer", StringSerializer.class.getName());
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      for (int i = 0; i < count; i++) {
        producer.send(new ProducerRecord<>(topic, "user-" + (i % 97), "java-" + i));
      }
      producer.flush();
    }
  }

  static void consume(String brokers, String topic, int count) {
    Properties p = new Properties();
    p.put("bootstrap.servers", brokers);
    p.put("enable.auto.commit", "false");
    p.put("isolation.level", "read_committed");
    p.put("key.deserializer", StringDeserializer.class.getName());
    p.put("value.deserializer", StringDeserializer.class.getName());
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
      List<TopicPartition> parts =
          consumer.partitionsFor(topic).stream()
              .map(i -> new TopicPartition(topic, i.partition()))
              .toList();
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      int seen = 0;
      long deadline = System.currentTimeMillis() + 60_000;
      while (seen < count) {
        if (System.currentTimeMillis() > deadline) {
          System.err.println("read " + seen + " of " + count + " records in 60 s");
          System.exit(2);
        }
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
          System.out.println(r.value());
          seen++;
        }
      }
    }
  }
}
