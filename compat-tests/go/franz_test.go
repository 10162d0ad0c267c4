package compat

// franz-go: kgo producer (idempotent by default, every codec), consumer, classic and KIP-848 groups with
// commit and resume, kadm admin, error cases.
// Owns: the franz-go checks. Must not: depend on another test's topics or groups (each makes its own).

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func kgoClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap(t)), kgo.FetchMaxWait(200 * time.Millisecond)},
		opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitTopicReady waits until metadata shows topic with parts partitions, each with a leader: Kafka answers
// CreateTopics before its broker serves the topic, and a loaded one takes seconds to catch up.
func waitTopicReady(t *testing.T, topic string, parts int) {
	t.Helper()
	adm := kadm.NewClient(kgoClient(t))
	if !waitFor(20*time.Second, func() bool {
		td, err := adm.ListTopics(ctxT(t, 5*time.Second), topic)
		d, ok := td[topic]
		if err != nil || !ok || d.Err != nil || len(d.Partitions) != parts {
			return false
		}
		for _, p := range d.Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("topic %s: no leader for all %d partitions after 20 s", topic, parts)
	}
}

func kadmCreate(t *testing.T, adm *kadm.Client, topic string, parts int32, configs map[string]*string) {
	t.Helper()
	r, err := adm.CreateTopic(ctxT(t, 20*time.Second), parts, 1, configs, topic)
	if err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	waitTopicReady(t, topic, int(parts))
}

// consumeN reads n records from the start of every partition of topic with a group-less consumer.
func kgoConsumeN(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kgoClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t, 30*time.Second)
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", len(got), n, topic)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

func TestFranzProduceConsumeCodecs(t *testing.T) {
	t.Parallel()
	adm := kadm.NewClient(kgoClient(t))
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := uniq("franz-" + name)
			kadmCreate(t, adm, topic, 3, nil)
			p := kgoClient(t, kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerLinger(5*time.Millisecond))
			const n = 300
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%7)), Value: value(i),
					Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}, {Key: "empty"}}}
			}
			if err := p.ProduceSync(ctxT(t, 30*time.Second), recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			at := map[string]*kgo.Record{}
			for _, r := range recs {
				at[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = r
			}
			got := kgoConsumeN(t, topic, n)
			if len(got) != n {
				t.Fatalf("consumed %d records, produced %d", len(got), n)
			}
			for _, g := range got {
				w := at[fmt.Sprintf("%d/%d", g.Partition, g.Offset)]
				if w == nil {
					t.Fatalf("record at %d/%d was not acknowledged there", g.Partition, g.Offset)
				}
				if string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) || len(g.Headers) != 2 ||
					g.Headers[0].Key != "i" || string(g.Headers[0].Value) != string(w.Headers[0].Value) ||
					g.Headers[1].Key != "empty" || len(g.Headers[1].Value) != 0 {
					t.Fatalf("record at %d/%d differs: got %q %q %v", g.Partition, g.Offset, g.Key, g.Value, g.Headers)
				}
				// The producer was idempotent (kgo's default): a producer id on every record.
				if g.ProducerID < 0 {
					t.Fatalf("record at %d/%d has no producer id", g.Partition, g.Offset)
				}
			}
		})
	}
}

// groupRun consumes from topic in group until total records have been seen (by this member), committing
// what it polled, and returns what it saw.
func kgoGroupConsume(t *testing.T, cl *kgo.Client, want int) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group consumer saw %d of %d records", len(got), want)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err)
		}
		got = append(got, fs.Records()...)
	}
	if err := cl.CommitRecords(ctx, got...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return got
}

func franzGroup(t *testing.T, serverSide bool) {
	adm := kadm.NewClient(kgoClient(t))
	topic, group := uniq("franz-grp"), uniq("franz-g")
	kadmCreate(t, adm, topic, 4, nil)
	p := kgoClient(t)
	var recs []*kgo.Record
	for i := 0; i < 40; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 4), Key: []byte(fmt.Sprint(i)), Value: value(i)})
	}
	p2 := kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	_ = p
	if err := p2.ProduceSync(ctxT(t, 20*time.Second), recs[:20]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	opts := []kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(10 * time.Second)}
	if serverSide {
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
	}
	c1, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap(t)), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	first := kgoGroupConsume(t, c1, 20)
	if len(first) != 20 {
		t.Fatalf("first member saw %d records, want 20", len(first))
	}
	c1.Close() // leaves the group
	// Committed offsets, as the admin API sees them: 5 on every partition.
	fo, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	for part := int32(0); part < 4; part++ {
		o, ok := fo.Lookup(topic, part)
		if !ok || o.Err != nil || o.At != 5 {
			t.Fatalf("committed offset of %s[%d]: %+v (found %v), want 5", topic, part, o, ok)
		}
	}
	if err := p2.ProduceSync(ctxT(t, 20*time.Second), recs[20:]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A new member resumes at the committed offsets: exactly the 20 new records.
	c2 := kgoClient(t, opts...)
	second := kgoGroupConsume(t, c2, 20)
	seen := map[string]bool{}
	for _, r := range second {
		if r.Offset < 5 {
			t.Fatalf("resumed member re-read %s[%d]@%d below the committed offset", r.Topic, r.Partition, r.Offset)
		}
		seen[string(r.Key)] = true
	}
	for i := 20; i < 40; i++ {
		if !seen[fmt.Sprint(i)] {
			t.Fatalf("resumed member missed record %d", i)
		}
	}
	if serverSide {
		// The members used ConsumerGroupHeartbeat (kgo falls back to JoinGroup silently otherwise): the
		// group is a consumer-protocol group, described by ConsumerGroupDescribe. The member has left, so
		// the group is empty.
		dg, err := adm.DescribeConsumerGroups(ctxT(t, 10*time.Second), group)
		if err != nil {
			t.Fatalf("ConsumerGroupDescribe: %v", err)
		}
		if g, ok := dg[group]; !ok || g.Err != nil {
			t.Fatalf("ConsumerGroupDescribe of %s (not a consumer-protocol group?): %+v", group, g)
		}
	} else {
		dg, err := adm.DescribeGroups(ctxT(t, 10*time.Second), group)
		if err != nil {
			t.Fatal(err)
		}
		g := dg[group]
		if g.Err != nil || g.State != "Stable" || g.Protocol != "cooperative-sticky" || len(g.Members) != 1 {
			t.Fatalf("described group: err=%v state=%q protocol=%q members=%d", g.Err, g.State, g.Protocol, len(g.Members))
		}
	}
}

func TestFranzGroupClassic(t *testing.T) { t.Parallel(); franzGroup(t, false) }

// KIP-848: ConsumerGroupHeartbeat with the server-side range assignor.
func TestFranzGroupConsumerProtocol(t *testing.T) { t.Parallel(); franzGroup(t, true) }

func TestFranzAdmin(t *testing.T) {
	t.Parallel()
	cl := kgoClient(t)
	adm := kadm.NewClient(cl)
	ctx := ctxT(t, 60*time.Second)
	topic := uniq("franz-adm")
	retention := "3600000"
	kadmCreate(t, adm, topic, 2, map[string]*string{"retention.ms": &retention})

	// Already exists.
	// kadm returns the topic's error also as the call's error.
	r, _ := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if !errors.Is(r.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("second create: %v, want TOPIC_ALREADY_EXISTS", r.Err)
	}
	td, err := adm.ListTopics(ctx, topic)
	if err != nil || len(td[topic].Partitions) != 2 {
		t.Fatalf("list topics: %v %+v", err, td[topic])
	}
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) != 1 {
		t.Fatalf("brokers: %v %+v", err, brokers)
	}
	cp, err := adm.CreatePartitions(ctx, 2, topic)
	if err != nil || cp[topic].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, cp[topic])
	}
	if !waitFor(10*time.Second, func() bool {
		td, err := adm.ListTopics(ctx, topic)
		return err == nil && len(td[topic].Partitions) == 4
	}) {
		t.Fatal("topic does not have 4 partitions after CreatePartitions")
	}

	rc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On(topic, nil)
	if err != nil || c.Err != nil {
		t.Fatalf("describe configs: %v %v", err, c.Err)
	}
	found := false
	for _, kv := range c.Configs {
		if kv.Key == "retention.ms" {
			found = kv.Value != nil && *kv.Value == retention && kv.Source == kmsg.ConfigSourceDynamicTopicConfig
		}
	}
	if !found {
		t.Fatalf("retention.ms not described as the topic's own 3600000: %+v", c.Configs)
	}
	seg := "1048576"
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: &seg},
		{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic)
	if err != nil || ar[0].Err != nil {
		t.Fatalf("incremental alter: %v %+v", err, ar)
	}
	// Kafka applies config changes through its metadata log: they show up shortly after the answer.
	if !waitFor(10*time.Second, func() bool {
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			return false
		}
		c, err := rc.On(topic, nil)
		if err != nil {
			return false
		}
		ok := 0
		for _, kv := range c.Configs {
			if kv.Key == "segment.bytes" && kv.Value != nil && *kv.Value == seg {
				ok++
			}
			if kv.Key == "retention.ms" && kv.Source != kmsg.ConfigSourceDynamicTopicConfig {
				ok++
			}
		}
		return ok == 2
	}) {
		t.Fatal("segment.bytes not set or retention.ms still the topic's own after IncrementalAlterConfigs")
	}

	// Offsets: 10 records on partition 0, DeleteRecords up to 4, start/end offsets.
	p := kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: value(i)})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, topic)
	if o, _ := end.Lookup(topic, 0); err != nil || o.Offset != 10 {
		t.Fatalf("end offset: %v %+v", err, o)
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4})
	dr, err := adm.DeleteRecords(ctx, os)
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr.Error())
	}
	start, err := adm.ListStartOffsets(ctx, topic)
	if o, _ := start.Lookup(topic, 0); err != nil || o.Offset != 4 {
		t.Fatalf("start offset after DeleteRecords: %v %+v", err, o)
	}

	// Group offsets without members: commit, fetch, list, delete.
	group := uniq("franz-adm-g")
	co := kadm.Offsets{}
	co.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, group, co); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if o, ok := fo.Lookup(topic, 0); err != nil || !ok || o.At != 7 {
		t.Fatalf("fetch offsets: %v %+v", err, o)
	}
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lg[group]; !ok {
		t.Fatalf("group %s not listed: %v", group, lg.Groups())
	}
	dg, err := adm.DeleteGroups(ctx, group)
	if err != nil || dg[group].Err != nil {
		t.Fatalf("delete group: %v %+v", err, dg[group])
	}
	dg, err = adm.DeleteGroups(ctx, group)
	if err != nil || !errors.Is(dg[group].Err, kerr.GroupIDNotFound) {
		t.Fatalf("delete deleted group: %v %+v, want GROUP_ID_NOT_FOUND", err, dg[group])
	}

	dt, err := adm.DeleteTopics(ctx, topic)
	if err != nil || dt[topic].Err != nil {
		t.Fatalf("delete topic: %v %+v", err, dt[topic])
	}
	dt, err = adm.DeleteTopics(ctx, uniq("franz-missing"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dt {
		if !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("delete unknown topic: %+v, want UNKNOWN_TOPIC_OR_PARTITION", d)
		}
	}
}

func TestFranzErrors(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	adm := kadm.NewClient(kgoClient(t))

	t.Run("unknown topic", func(t *testing.T) {
		// No AllowAutoTopicCreation: Metadata asks not to create it.
		p := kgoClient(t, kgo.UnknownTopicRetries(2))
		err := p.ProduceSync(ctx, &kgo.Record{Topic: uniq("franz-missing"), Value: []byte("x")}).FirstErr()
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("produce to a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	})

	t.Run("offset out of range", func(t *testing.T) {
		topic := uniq("franz-oor")
		kadmCreate(t, adm, topic, 1, nil)
		cl := kgoClient(t)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 100
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.SessionEpoch = -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		ft.TopicID = td[topic].ID
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = 0
		fp.FetchOffset = 1000
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch answer: %+v", resp)
		}
		pr := resp.Topics[0].Partitions[0]
		if pr.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("fetch at 1000 of a 1-record partition: error %d, want OFFSET_OUT_OF_RANGE (1)", pr.ErrorCode)
		}
		// Kafka answers a partition in error with high watermark and log start offset -1.
		if pr.HighWatermark != -1 || pr.LogStartOffset != -1 {
			t.Fatalf("OFFSET_OUT_OF_RANGE answer carries high watermark %d, log start %d; Kafka sends -1, -1",
				pr.HighWatermark, pr.LogStartOffset)
		}
	})

	t.Run("record too large", func(t *testing.T) {
		topic := uniq("franz-big")
		max := "1024"
		kadmCreate(t, adm, topic, 1, map[string]*string{"max.message.bytes": &max})
		// Uncompressed: the limit applies to the batch as stored, and kgo compresses by default.
		p := kgoClient(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
		err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: make([]byte, 8192)}).FirstErr()
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("8 KiB record on a max.message.bytes=1024 topic: %v, want MESSAGE_TOO_LARGE", err)
		}
		end, err := adm.ListEndOffsets(ctx, topic)
		if o, _ := end.Lookup(topic, 0); err != nil || o.Offset != 0 {
			t.Fatalf("refused record took an offset: %v %+v", err, o)
		}
	})
	_ = context.Background
}
