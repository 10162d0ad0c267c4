/*
 * Owns: the Java client's cells of the security matrix (py/test_security_matrix.py drives them): a
 * produce/consume round trip with kafka-clients over SSL, mTLS, SASL_PLAINTEXT and SASL_SSL with PLAIN,
 * SCRAM-SHA-256 and SCRAM-SHA-512, against the listeners the driver passes in KB_SEC_* variables.
 * Must not: register anything without those variables (the plain Java suite has no secured broker), or
 * decide what is an expected failure (the driver does, per target).
 */
package kbcompat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

final class SecurityCases {
    private SecurityCases() {}

    static final String[][] CELLS = {
        {"SSL", "-"}, {"MTLS", "-"},
        {"SASL_PLAINTEXT", "PLAIN"}, {"SASL_SSL", "PLAIN"},
        {"SASL_PLAINTEXT", "SCRAM-SHA-256"}, {"SASL_SSL", "SCRAM-SHA-256"},
        {"SASL_PLAINTEXT", "SCRAM-SHA-512"}, {"SASL_SSL", "SCRAM-SHA-512"},
    };

    static void register(Main.Env env) {
        Map<String, String> e = System.getenv();
        if (e.get("KB_SEC_CA") == null) {
            return;
        }
        String cases = e.getOrDefault("KB_SEC_CASES", "");
        for (String[] c : CELLS) {
            String cell = c[0] + "/" + c[1];
            if (!cases.isEmpty() && !List.of(cases.split(",")).contains(cell)) {
                continue;
            }
            Main.add("secmatrix/" + cell, 60000, () -> roundTrip(env, c[0], c[1]));
        }
    }

    static Properties conf(String listener, String mech) {
        Map<String, String> e = System.getenv();
        Properties p = new Properties();
        p.put("bootstrap.servers", e.get("KB_SEC_BOOTSTRAP_" + listener));
        String proto = listener.equals("MTLS") ? "SSL" : listener;
        p.put("security.protocol", proto);
        if (proto.contains("SSL")) {
            p.put("ssl.truststore.type", "PEM");
            p.put("ssl.truststore.location", e.get("KB_SEC_CA"));
        }
        if (listener.equals("MTLS")) {
            p.put("ssl.keystore.type", "PEM");
            p.put("ssl.keystore.location", e.get("KB_SEC_CLIENT_KEYSTORE"));
        }
        if (!mech.equals("-")) {
            String[] up = e.get("KB_SEC_CRED_" + mech.replace('-', '_')).split(":", 2);
            String module = mech.equals("PLAIN") ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                    : "org.apache.kafka.common.security.scram.ScramLoginModule";
            p.put("sasl.mechanism", mech);
            // The JAAS parser takes quoted strings with backslash escapes.
            p.put("sasl.jaas.config", module + " required username=\"" + jaasQuote(up[0]) + "\" password=\""
                    + jaasQuote(up[1]) + "\";");
        }
        return p;
    }

    static String jaasQuote(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"");
    }

    static void roundTrip(Main.Env env, String listener, String mech) throws Exception {
        String tag = (listener + "-" + mech).toLowerCase().replace('_', '-');
        String topic = env.name("sec-java-" + tag);
        String group = env.name("secg-java-" + tag);
        Properties base = conf(listener, mech);
        try (Admin admin = Admin.create(with(base, "default.api.timeout.ms", "30000"))) {
            // A topic whose partition is served before the (idempotent) producer's first batch.
            Util.createTopic(admin, topic, 1, null);
        }
        List<String> want = new ArrayList<>();
        Properties pp = with(base, "acks", "all", "max.block.ms", "20000", "delivery.timeout.ms", "30000",
                "request.timeout.ms", "20000");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 3; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(topic, "k" + i,
                        "java " + listener + " " + mech + " #" + i);
                r.headers().add("i", Integer.toString(i).getBytes()).add("via", listener.getBytes());
                p.send(r).get(30, TimeUnit.SECONDS);
                want.add(r.key() + "|" + r.value() + "|i=" + i + ",via=" + listener);
            }
        }
        Properties cp = with(base, "group.id", group, "auto.offset.reset", "earliest", "enable.auto.commit",
                "false", "group.protocol", "classic");
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(),
                new StringDeserializer())) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 40000;
            while (got.size() < want.size() && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    StringBuilder h = new StringBuilder();
                    for (Header x : r.headers()) {
                        h.append(h.length() > 0 ? "," : "").append(x.key()).append('=').append(new String(x.value()));
                    }
                    got.add(r.key() + "|" + r.value() + "|" + h);
                }
            }
            Util.eq(want, got, "records read back by group " + group + " over " + listener + " " + mech);
            c.commitSync(Duration.ofSeconds(20));
        }
    }

    static Properties with(Properties base, String... kv) {
        Properties p = new Properties();
        p.putAll(base);
        for (int i = 0; i + 1 < kv.length; i += 2) {
            p.put(kv[i], kv[i + 1]);
        }
        return p;
    }
}
