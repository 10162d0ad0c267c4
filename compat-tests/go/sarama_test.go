package compat

// IBM/sarama with Config.Version = sarama.MaxVersion (the newest Kafka version it knows: it picks request
// versions from it): idempotent sync producer with every codec, partition consumer, consumer group with
// commit and resume, ClusterAdmin, error cases.
// Owns: the sarama checks. Must not: depend on another test's topics or groups (each makes its own).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.MaxVersion
	c.ClientID = "kb-compat-sarama"
	c.Metadata.AllowAutoTopicCreation = false
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	c.Consumer.Return.Errors = true
	c.Net.DialTimeout = 10 * time.Second
	return c
}

func saramaAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	a, err := sarama.NewClusterAdmin([]string{bootstrap(t)}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func saramaCreate(t *testing.T, a sarama.ClusterAdmin, topic string, parts int32, configs map[string]*string) {
	t.Helper()
	if err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1, ConfigEntries: configs},
		false); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	waitTopicReady(t, topic, int(parts))
}

func saramaProducer(t *testing.T, mod func(*sarama.Config)) sarama.SyncProducer {
	t.Helper()
	c := saramaConfig()
	if mod != nil {
		mod(c)
	}
	p, err := sarama.NewSyncProducer([]string{bootstrap(t)}, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestSaramaProduceConsumeCodecs(t *testing.T) {
	t.Parallel()
	a := saramaAdmin(t)
	codecs := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := uniq("sarama-" + name)
			saramaCreate(t, a, topic, 2, nil)
			p := saramaProducer(t, func(c *sarama.Config) {
				c.Producer.Idempotent = true
				c.Net.MaxOpenRequests = 1
				c.Producer.Compression = codec
				c.Producer.Flush.Messages = 50
				c.Producer.Flush.Frequency = 5 * time.Millisecond
			})
			const n = 200
			msgs := make([]*sarama.ProducerMessage, n)
			for i := range msgs {
				msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i%5)),
					Value: sarama.ByteEncoder(value(i)), Headers: []sarama.RecordHeader{
						{Key: []byte("i"), Value: []byte(fmt.Sprint(i))}, {Key: []byte("empty"), Value: []byte{}}}}
			}
			if err := p.SendMessages(msgs); err != nil {
				t.Fatalf("produce: %v", err)
			}
			want := map[string]int{}
			for i, m := range msgs {
				want[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = i
			}
			cons, err := sarama.NewConsumer([]string{bootstrap(t)}, saramaConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			got := 0
			for part := int32(0); part < 2; part++ {
				pc, err := cons.ConsumePartition(topic, part, sarama.OffsetOldest)
				if err != nil {
					t.Fatal(err)
				}
				hw := pc.HighWaterMarkOffset()
				for expect := int64(0); ; expect++ {
					if expect > 0 && expect >= pc.HighWaterMarkOffset() {
						break
					}
					var m *sarama.ConsumerMessage
					select {
					case m = <-pc.Messages():
					case e := <-pc.Errors():
						t.Fatalf("consume: %v", e)
					case <-time.After(20 * time.Second):
						t.Fatalf("%s[%d]: no record at %d (hw %d)", topic, part, expect, hw)
					}
					i, ok := want[fmt.Sprintf("%d/%d", m.Partition, m.Offset)]
					if !ok || m.Offset != expect {
						t.Fatalf("record at %d/%d was not acknowledged there", m.Partition, m.Offset)
					}
					if string(m.Key) != fmt.Sprintf("k%d", i%5) || string(m.Value) != string(value(i)) ||
						len(m.Headers) != 2 || string(m.Headers[0].Value) != fmt.Sprint(i) ||
						string(m.Headers[1].Key) != "empty" || len(m.Headers[1].Value) != 0 {
						t.Fatalf("record %d differs: %q %q %v", i, m.Key, m.Value, m.Headers)
					}
					got++
				}
				_ = pc.Close()
			}
			if got != n {
				t.Fatalf("consumed %d, produced %d", got, n)
			}
		})
	}
}

type saramaHandler struct {
	mu   sync.Mutex
	seen map[string]int64 // key -> offset
	want int
	done chan struct{}
	once sync.Once
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.seen[string(m.Key)] = m.Offset
		n := len(h.seen)
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if n >= h.want {
			s.Commit()
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

func saramaGroupRun(t *testing.T, group, topic string, want int) map[string]int64 {
	t.Helper()
	c := saramaConfig()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = time.Second
	g, err := sarama.NewConsumerGroup([]string{bootstrap(t)}, group, c)
	if err != nil {
		t.Fatal(err)
	}
	h := &saramaHandler{seen: map[string]int64{}, want: want, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	select {
	case <-h.done:
	case err := <-errs:
		cancel()
		t.Fatalf("group consume: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("group saw %d of %d records", len(h.seen), want)
	}
	cancel()
	<-errs
	if err := g.Close(); err != nil {
		t.Fatalf("close group: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen
}

func TestSaramaGroupCommitResume(t *testing.T) {
	t.Parallel()
	a := saramaAdmin(t)
	topic, group := uniq("sarama-grp"), uniq("sarama-g")
	saramaCreate(t, a, topic, 3, nil)
	p := saramaProducer(t, func(c *sarama.Config) { c.Producer.Partitioner = sarama.NewManualPartitioner })
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: int32(i % 3),
				Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.ByteEncoder(value(i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 15)
	first := saramaGroupRun(t, group, topic, 15)
	if len(first) != 15 {
		t.Fatalf("first run saw %d records", len(first))
	}
	off, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	for part := int32(0); part < 3; part++ {
		b := off.GetBlock(topic, part)
		if b == nil || !errors.Is(b.Err, sarama.ErrNoError) || b.Offset != 5 {
			t.Fatalf("committed offset of %s[%d]: %+v, want 5", topic, part, b)
		}
	}
	send(15, 30)
	second := saramaGroupRun(t, group, topic, 15)
	for k, o := range second {
		if o < 5 {
			t.Fatalf("resumed group re-read key %s at offset %d", k, o)
		}
	}
	for i := 15; i < 30; i++ {
		if _, ok := second[fmt.Sprint(i)]; !ok {
			t.Fatalf("resumed group missed record %d", i)
		}
	}
	groups, err := a.ListConsumerGroups()
	if err != nil || groups[group] != "consumer" {
		t.Fatalf("list groups: %v %v", err, groups[group])
	}
	desc, err := a.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 || desc[0].State != "Empty" {
		t.Fatalf("describe group: %v %+v", err, desc)
	}
	if err := a.DeleteConsumerGroupOffset(group, topic, 0); err != nil {
		t.Fatalf("OffsetDelete: %v", err)
	}
	if err := a.DeleteConsumerGroup(group); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	if err := a.DeleteConsumerGroup(group); !errors.Is(err, sarama.ErrGroupIDNotFound) {
		t.Fatalf("delete a deleted group: %v, want GROUP_ID_NOT_FOUND", err)
	}
}

func TestSaramaAdmin(t *testing.T) {
	t.Parallel()
	a := saramaAdmin(t)
	topic := uniq("sarama-adm")
	ret := "3600000"
	saramaCreate(t, a, topic, 2, map[string]*string{"retention.ms": &ret})
	err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("create again: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	err = a.CreateTopic(uniq("sarama-rf3"), &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 3}, false)
	if !errors.Is(err, sarama.ErrInvalidReplicationFactor) {
		t.Fatalf("replication factor 3 on one broker: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	brokers, ctrl, err := a.DescribeCluster()
	if err != nil || len(brokers) != 1 || ctrl != brokers[0].ID() {
		t.Fatalf("describe cluster: %v %d brokers controller %d", err, len(brokers), ctrl)
	}
	topics, err := a.ListTopics()
	if err != nil || topics[topic].NumPartitions != 2 {
		t.Fatalf("list topics: %v %+v", err, topics[topic])
	}
	if err := a.CreatePartitions(topic, 3, nil, false); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	if !waitFor(10*time.Second, func() bool {
		md, err := a.DescribeTopics([]string{topic})
		return err == nil && len(md) == 1 && len(md[0].Partitions) == 3
	}) {
		t.Fatal("topic does not have 3 partitions")
	}
	entries, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	for _, e := range entries {
		if e.Name == "retention.ms" {
			ok = e.Value == ret && e.Source == sarama.SourceTopic
		}
	}
	if !ok {
		t.Fatalf("retention.ms not described as the topic's own %s", ret)
	}
	seg := "2097152"
	if err := a.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		"segment.bytes": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &seg}}, false); err != nil {
		t.Fatalf("incremental alter: %v", err)
	}
	if !waitFor(10*time.Second, func() bool {
		e, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic,
			ConfigNames: []string{"segment.bytes"}})
		return err == nil && len(e) == 1 && e[0].Value == seg
	}) {
		t.Fatal("segment.bytes not set after IncrementalAlterConfigs")
	}
	p := saramaProducer(t, func(c *sarama.Config) { c.Producer.Partitioner = sarama.NewManualPartitioner })
	for i := 0; i < 6; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"),
			Value: sarama.ByteEncoder(value(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.DeleteRecords(topic, map[int32]int64{0: 2}); err != nil {
		t.Fatalf("delete records: %v", err)
	}
	lo, err := a.ListOffsets(map[string]map[int32]int64{topic: {0: sarama.OffsetOldest, 1: sarama.OffsetNewest}}, nil)
	if err != nil || lo[topic][0].Offset != 2 || lo[topic][1].Offset != 0 {
		t.Fatalf("list offsets: %v %+v %+v", err, lo[topic][0], lo[topic][1])
	}
	// AlterConfigs (not incremental) replaces the topic's configs: a compacted topic refuses DeleteRecords.
	if err := a.AlterConfig(sarama.TopicResource, topic, map[string]*string{"cleanup.policy": strp("compact")}, false); err != nil {
		t.Fatalf("alter configs: %v", err)
	}
	// Kafka applies config changes through its metadata log: wait until they show.
	if !waitFor(10*time.Second, func() bool {
		e, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic,
			ConfigNames: []string{"cleanup.policy"}})
		return err == nil && len(e) == 1 && e[0].Value == "compact"
	}) {
		t.Fatal("cleanup.policy not compact after AlterConfigs")
	}
	// Kafka's partition takes the new policy a little after DescribeConfigs shows it.
	if !waitFor(10*time.Second, func() bool {
		err = a.DeleteRecords(topic, map[int32]int64{0: 3})
		return errors.Is(err, sarama.ErrPolicyViolation)
	}) {
		t.Fatalf("DeleteRecords on a compacted topic: %v, want POLICY_VIOLATION", err)
	}
	group := uniq("sarama-adm-g")
	if _, err := a.AlterConsumerGroupOffsets(group, map[string]map[int32]sarama.OffsetAndMetadata{topic: {0: {Offset: 4}}},
		nil); err != nil {
		t.Fatalf("alter group offsets: %v", err)
	}
	off, err := a.ListConsumerGroupOffsets(group, nil)
	if err != nil || off.GetBlock(topic, 0) == nil || off.GetBlock(topic, 0).Offset != 4 {
		t.Fatalf("group offsets: %v %+v", err, off)
	}
	if _, err := a.DescribeLogDirs([]int32{brokers[0].ID()}); err != nil {
		t.Fatalf("describe log dirs: %v", err)
	}
	if err := a.DeleteTopic(topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	if err := a.DeleteTopic(uniq("sarama-missing")); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("delete unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

func strp(s string) *string { return &s }

func TestSaramaErrors(t *testing.T) {
	t.Parallel()
	a := saramaAdmin(t)
	t.Run("unknown topic", func(t *testing.T) {
		c := saramaConfig()
		c.Metadata.Retry.Max = 1
		c.Metadata.Retry.Backoff = 100 * time.Millisecond
		cons, err := sarama.NewConsumer([]string{bootstrap(t)}, c)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		_, err = cons.ConsumePartition(uniq("sarama-missing"), 0, sarama.OffsetOldest)
		if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			t.Fatalf("consume a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	})
	t.Run("offset out of range", func(t *testing.T) {
		topic := uniq("sarama-oor")
		saramaCreate(t, a, topic, 1, nil)
		p := saramaProducer(t, nil)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("x")}); err != nil {
			t.Fatal(err)
		}
		cons, err := sarama.NewConsumer([]string{bootstrap(t)}, saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		_, err = cons.ConsumePartition(topic, 0, 1000)
		if !errors.Is(err, sarama.ErrOffsetOutOfRange) {
			t.Fatalf("consume at 1000 of a 1-record partition: %v, want OFFSET_OUT_OF_RANGE", err)
		}
	})
	t.Run("record too large", func(t *testing.T) {
		topic := uniq("sarama-big")
		saramaCreate(t, a, topic, 1, map[string]*string{"max.message.bytes": strp("1024")})
		p := saramaProducer(t, func(c *sarama.Config) { c.Producer.Retry.Max = 0 })
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(make([]byte, 8192))})
		if !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
			t.Fatalf("8 KiB record on a max.message.bytes=1024 topic: %v, want MESSAGE_TOO_LARGE", err)
		}
	})
}
