import java.util.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class TxnFix {
    static KafkaProducer<String,String> mk(String bs, String id, int timeout) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bs);
        p.put("transactional.id", id);
        p.put("transaction.timeout.ms", Integer.toString(timeout));
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }
    public static void main(String[] a) throws Exception {
        String bs = a[0];
        KafkaProducer<String,String> p = mk(bs, "tx-java", 60000);
        p.initTransactions();
        p.beginTransaction();
        p.send(new ProducerRecord<>("t", 0, "k", "v")).get();
        p.send(new ProducerRecord<>("t", 1, "k", "v")).get();
        p.sendOffsetsToTransaction(Map.of(new TopicPartition("t", 0), new OffsetAndMetadata(1)), new ConsumerGroupMetadata("g1"));
        p.commitTransaction();
        p.beginTransaction();
        p.send(new ProducerRecord<>("t", 1, "k", "v")).get();
        p.abortTransaction();
        // zombie: an ongoing transaction fenced by a new instance with the same id
        p.beginTransaction();
        p.send(new ProducerRecord<>("t", 0, "k", "v")).get();
        KafkaProducer<String,String> q = mk(bs, "tx-java", 60000);
        q.initTransactions();
        q.close();
        p.close(java.time.Duration.ofSeconds(2));
        // timeout: the coordinator aborts
        KafkaProducer<String,String> r = mk(bs, "tx-timeout", 1000);
        r.initTransactions();
        r.beginTransaction();
        r.send(new ProducerRecord<>("t", 0, "k", "v")).get();
        Thread.sleep(4000);
        r.close(java.time.Duration.ofSeconds(2));
        System.out.println("java done");
    }
}
