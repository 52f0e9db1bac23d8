package io.quarkiverse.memit.it;

import java.util.List;
import java.util.Properties;
import java.util.UUID;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Plain Kafka clients of the tests, on the application's broker. */
final class TestKafka {

    private TestKafka() {
    }

    static KafkaProducer<String, String> producer(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    /** A producer of raw bytes, which may send records of up to 12 MB. */
    static KafkaProducer<byte[], byte[]> bytesProducer(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 12_000_000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    /** A consumer of its own group, reading the topics from their start. */
    static KafkaConsumer<String, String> consumer(String bootstrap, String... topics) {
        return consumer(bootstrap, StringDeserializer.class, topics);
    }

    /** As {@link #consumer}, of raw bytes. */
    static KafkaConsumer<byte[], byte[]> bytesConsumer(String bootstrap, String... topics) {
        return consumer(bootstrap, ByteArrayDeserializer.class, topics);
    }

    private static <T> KafkaConsumer<T, T> consumer(String bootstrap, Class<? extends Deserializer<T>> type,
            String... topics) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "test-" + UUID.randomUUID());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, type.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, type.getName());
        KafkaConsumer<T, T> consumer = new KafkaConsumer<>(p);
        consumer.subscribe(List.of(topics));
        return consumer;
    }
}
