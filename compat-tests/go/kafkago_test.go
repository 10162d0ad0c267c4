package compat

// segmentio/kafka-go: Writer with every codec (it has no idempotent producer), Reader by partition and by
// group with explicit commits and resume, the Client's admin requests, error cases.
// Owns: the kafka-go checks. Must not: depend on another test's topics or groups (each makes its own).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func kgoAddr(t *testing.T) net.Addr { return kafka.TCP(bootstrap(t)) }

func kafkagoClient(t *testing.T) *kafka.Client {
	return &kafka.Client{Addr: kgoAddr(t), Timeout: 20 * time.Second}
}

func kafkagoCreate(t *testing.T, c *kafka.Client, topic string, parts int, configs ...kafka.ConfigEntry) {
	t.Helper()
	r, err := c.CreateTopics(ctxT(t, 20*time.Second), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: parts, ReplicationFactor: 1, ConfigEntries: configs}}})
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if r.Errors[topic] != nil {
		t.Fatalf("create %s: %v", topic, r.Errors[topic])
	}
	waitTopicReady(t, topic, parts)
}

func TestKafkaGoProduceConsumeCodecs(t *testing.T) {
	t.Parallel()
	c := kafkagoClient(t)
	codecs := map[string]kafka.Compression{"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4,
		"zstd": kafka.Zstd}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := uniq("kafkago-" + name)
			kafkagoCreate(t, c, topic, 1)
			w := &kafka.Writer{Addr: kgoAddr(t), Topic: topic, Compression: codec, RequiredAcks: kafka.RequireAll,
				BatchTimeout: 5 * time.Millisecond, BatchSize: 50}
			defer w.Close()
			const n = 150
			msgs := make([]kafka.Message, n)
			for i := range msgs {
				msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("k%d", i%3)), Value: value(i),
					Headers: []kafka.Header{{Key: "i", Value: []byte(fmt.Sprint(i))}, {Key: "empty", Value: []byte{}}}}
			}
			if err := w.WriteMessages(ctxT(t, 30*time.Second), msgs...); err != nil {
				t.Fatalf("write: %v", err)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap(t)}, Topic: topic, Partition: 0,
				MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 200 * time.Millisecond})
			defer r.Close()
			ctx := ctxT(t, 30*time.Second)
			for i := 0; i < n; i++ {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				// One partition, one writer, batches in order: record i is at offset i.
				if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i%3) || string(m.Value) != string(value(i)) ||
					len(m.Headers) != 2 || string(m.Headers[0].Value) != fmt.Sprint(i) || m.Headers[1].Key != "empty" ||
					len(m.Headers[1].Value) != 0 {
					t.Fatalf("record %d differs: offset %d key %q headers %v", i, m.Offset, m.Key, m.Headers)
				}
			}
			lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
				topic: {kafka.LastOffsetOf(0)}}})
			if err != nil || lo.Topics[topic][0].LastOffset != n {
				t.Fatalf("end offset: %v %+v", err, lo)
			}
		})
	}
}

func kafkagoGroupRead(t *testing.T, group, topic string, want int) map[string]int64 {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap(t)}, GroupID: group, Topic: topic, MinBytes: 1, MaxBytes: 10 << 20,
		MaxWait: 200 * time.Millisecond, StartOffset: kafka.FirstOffset, SessionTimeout: 10 * time.Second,
		HeartbeatInterval: time.Second, RebalanceTimeout: 10 * time.Second})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("close reader: %v", err)
		}
	}()
	ctx := ctxT(t, 60*time.Second)
	seen := map[string]int64{}
	for len(seen) < want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("group read after %d records: %v", len(seen), err)
		}
		seen[string(m.Key)] = m.Offset
		// CommitInterval 0: a synchronous OffsetCommit per call.
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	return seen
}

func TestKafkaGoGroupCommitResume(t *testing.T) {
	t.Parallel()
	c := kafkagoClient(t)
	topic, group := uniq("kafkago-grp"), uniq("kafkago-g")
	// One partition: with two, kafka-go's group Reader sometimes stopped after one partition's records
	// against Apache Kafka too (1 run in 3), a client matter this test is not about.
	kafkagoCreate(t, c, topic, 1)
	w := &kafka.Writer{Addr: kgoAddr(t), Topic: topic, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	send := func(from, to int) {
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: value(i)})
		}
		if err := w.WriteMessages(ctxT(t, 20*time.Second), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	send(0, 10)
	if got := kafkagoGroupRead(t, group, topic, 10); len(got) != 10 {
		t.Fatalf("first reader saw %d", len(got))
	}
	ctx := ctxT(t, 30*time.Second)
	of, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
	if err != nil || of.Error != nil {
		t.Fatalf("offset fetch: %v %v", err, of)
	}
	total := int64(0)
	for _, p := range of.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch %d: %v", p.Partition, p.Error)
		}
		total += p.CommittedOffset
	}
	if total != 10 {
		t.Fatalf("committed offsets sum to %d, want 10: %+v", total, of.Topics[topic])
	}
	send(10, 20)
	second := kafkagoGroupRead(t, group, topic, 10)
	for i := 10; i < 20; i++ {
		if _, ok := second[fmt.Sprint(i)]; !ok {
			t.Fatalf("resumed reader missed record %d (saw %v)", i, second)
		}
	}
	lg, err := c.ListGroups(ctx, &kafka.ListGroupsRequest{})
	found := false
	for _, g := range lg.Groups {
		found = found || (g.GroupID == group && g.ProtocolType == "consumer")
	}
	if err != nil || lg.Error != nil || !found {
		t.Fatalf("list groups: %v %+v", err, lg)
	}
	dg, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(dg.Groups) != 1 || dg.Groups[0].Error != nil || dg.Groups[0].GroupState != "Empty" {
		t.Fatalf("describe group: %v %+v", err, dg)
	}
	del, err := c.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	if err != nil || del.Errors[group] != nil {
		t.Fatalf("delete group: %v %+v", err, del)
	}
}

func TestKafkaGoAdmin(t *testing.T) {
	t.Parallel()
	c := kafkagoClient(t)
	ctx := ctxT(t, 60*time.Second)
	topic := uniq("kafkago-adm")
	kafkagoCreate(t, c, topic, 1, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: "3600000"})
	r, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil || !errors.Is(r.Errors[topic], kafka.TopicAlreadyExists) {
		t.Fatalf("create again: %v %v, want TOPIC_ALREADY_EXISTS", err, r.Errors[topic])
	}
	cp, err := c.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{
		{Name: topic, Count: 3}}})
	if err != nil || cp.Errors[topic] != nil {
		t.Fatalf("create partitions: %v %+v", err, cp)
	}
	var md *kafka.MetadataResponse
	if !waitFor(10*time.Second, func() bool {
		md, err = c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		return err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) == 3 && len(md.Brokers) == 1
	}) {
		t.Fatalf("metadata after CreatePartitions to 3: %v %+v", err, md)
	}
	dc, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}}}})
	if err != nil || len(dc.Resources) != 1 || dc.Resources[0].Error != nil ||
		len(dc.Resources[0].ConfigEntries) != 1 || dc.Resources[0].ConfigEntries[0].ConfigValue != "3600000" {
		t.Fatalf("describe configs: %v %+v", err, dc)
	}
	ia, err := c.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, Configs: []kafka.IncrementalAlterConfigsRequestConfig{
			{Name: "retention.ms", Value: "7200000", ConfigOperation: kafka.ConfigOperationSet}}}}})
	if err != nil || len(ia.Resources) != 1 || ia.Resources[0].Error != nil {
		t.Fatalf("incremental alter: %v %+v", err, ia)
	}
	// Kafka applies config changes through its metadata log: wait until it shows.
	if !waitFor(10*time.Second, func() bool {
		dc, err = c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
			{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}}}})
		return err == nil && len(dc.Resources) == 1 && len(dc.Resources[0].ConfigEntries) == 1 &&
			dc.Resources[0].ConfigEntries[0].ConfigValue == "7200000"
	}) {
		t.Fatalf("retention.ms after alter: %v %+v", err, dc)
	}
	dt, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil || dt.Errors[topic] != nil {
		t.Fatalf("delete topic: %v %+v", err, dt)
	}
	missing := uniq("kafkago-missing")
	dt, err = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{missing}})
	if err != nil || !errors.Is(dt.Errors[missing], kafka.UnknownTopicOrPartition) {
		t.Fatalf("delete unknown topic: %v %+v, want UNKNOWN_TOPIC_OR_PARTITION", err, dt)
	}
}

func TestKafkaGoErrors(t *testing.T) {
	t.Parallel()
	c := kafkagoClient(t)
	t.Run("unknown topic", func(t *testing.T) {
		w := &kafka.Writer{Addr: kgoAddr(t), Topic: uniq("kafkago-missing"), MaxAttempts: 2,
			WriteBackoffMin: 50 * time.Millisecond, WriteBackoffMax: 100 * time.Millisecond}
		defer w.Close()
		err := w.WriteMessages(ctxT(t, 30*time.Second), kafka.Message{Value: []byte("x")})
		if !errors.Is(err, kafka.UnknownTopicOrPartition) {
			t.Fatalf("write to a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	})
	t.Run("offset out of range", func(t *testing.T) {
		topic := uniq("kafkago-oor")
		kafkagoCreate(t, c, topic, 1)
		w := &kafka.Writer{Addr: kgoAddr(t), Topic: topic}
		defer w.Close()
		if err := w.WriteMessages(ctxT(t, 20*time.Second), kafka.Message{Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		fr, err := c.Fetch(ctxT(t, 20*time.Second), &kafka.FetchRequest{Topic: topic, Partition: 0, Offset: 1000,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("fetch at 1000: %v", err)
		}
		if !errors.Is(fr.Error, kafka.OffsetOutOfRange) {
			t.Fatalf("fetch at 1000 of a 1-record partition: %v, want OFFSET_OUT_OF_RANGE", fr.Error)
		}
	})
	t.Run("record too large", func(t *testing.T) {
		topic := uniq("kafkago-big")
		kafkagoCreate(t, c, topic, 1, kafka.ConfigEntry{ConfigName: "max.message.bytes", ConfigValue: "1024"})
		// Client.Produce reports the partition's error (the Writer's answer depends on its batching).
		pr, err := c.Produce(ctxT(t, 20*time.Second), &kafka.ProduceRequest{Topic: topic, Partition: 0,
			RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(kafka.Record{Value: kafka.NewBytes(make([]byte, 8192))})})
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		if !errors.Is(pr.Error, kafka.MessageSizeTooLarge) {
			t.Fatalf("8 KiB record on a max.message.bytes=1024 topic: %v, want MESSAGE_TOO_LARGE", pr.Error)
		}
	})
	_ = context.Background
}
