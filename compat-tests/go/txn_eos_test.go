package compat

// franz-go: exactly-once consume-transform-produce with kgo.GroupTransactSession (issue 16): a read_committed
// group consumer and a transactional producer whose transactions carry the group's offsets, one transaction
// aborted in the middle.
// Owns: the franz-go transaction checks. Must not: depend on another test's topics, groups or ids.

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFranzGroupTransactSession(t *testing.T) {
	const n = 40
	in, out, group := uniq("go-eos-in"), uniq("go-eos-out"), uniq("go-eos-group")
	adm := kadm.NewClient(kgoClient(t))
	kadmCreate(t, adm, in, 2, nil)
	kadmCreate(t, adm, out, 2, nil)
	prod := kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var want []string
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: in, Partition: int32(i % 2), Value: []byte(fmt.Sprintf("v%02d", i))}
		if err := prod.ProduceSync(ctxT(t, 20*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("T(v%02d)", i))
	}

	s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(bootstrap(t)), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.TransactionalID(uniq("go-eos-txn")), kgo.ConsumerGroup(group), kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The group's committed offsets once no transaction's offsets are pending (RequireStable: Kafka answers
	// EndTxn before its markers are written).
	committedOffsets := func() map[int32]int64 {
		deadline := time.Now().Add(20 * time.Second)
		for {
			os, err := adm.FetchOffsets(kadm.RequireStable(ctxT(t, 20*time.Second)), group)
			if err == nil {
				err = os.Error()
			}
			if err == nil {
				m := map[int32]int64{}
				os.Each(func(o kadm.OffsetResponse) {
					if o.Topic == in {
						m[o.Partition] = o.At
					}
				})
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("fetch offsets of %s: %v", group, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	processed, txns, abortedRecords := 0, 0, 0
	for processed < n {
		if ctx.Err() != nil {
			t.Fatalf("processed %d of %d records before the deadline (%d transactions)", processed, n, txns)
		}
		fs := s.PollRecords(ctx, 7)
		if errs := fs.Errors(); len(errs) > 0 && ctx.Err() == nil {
			t.Fatalf("poll: %v", errs)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := s.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			o := &kgo.Record{Topic: out, Partition: r.Partition, Value: []byte("T(" + string(r.Value) + ")")}
			if err := s.ProduceSync(ctx, o).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		txns++
		if txns == 3 {
			// The middle one is aborted: its output invisible, the group's offsets unchanged, its records
			// consumed again (the session rewinds to the committed offsets).
			before := committedOffsets()
			committed, err := s.End(ctx, kgo.TryAbort)
			if err != nil || committed {
				t.Fatalf("abort: committed=%v err=%v", committed, err)
			}
			abortedRecords += len(recs)
			if after := committedOffsets(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("the group's offsets moved with an aborted transaction: %v -> %v", before, after)
			}
			continue
		}
		committed, err := s.End(ctx, kgo.TryCommit)
		if err != nil || !committed {
			t.Fatalf("commit of transaction %d: committed=%v err=%v", txns, committed, err)
		}
		processed += len(recs)
	}
	if txns < 4 || abortedRecords == 0 {
		t.Fatalf("%d transactions, %d records aborted: want several and one abort", txns, abortedRecords)
	}
	if got := committedOffsets(); got[0] != n/2 || got[1] != n/2 {
		t.Fatalf("the group's committed offsets %v, want %d on both partitions", got, n/2)
	}
	read := func(level kgo.IsolationLevel, want int) []string {
		cl := kgoClient(t, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(level),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		var vals []string
		deadline := time.Now().Add(30 * time.Second)
		for len(vals) < want && time.Now().Before(deadline) {
			pc, pcancel := context.WithTimeout(context.Background(), time.Second)
			cl.PollFetches(pc).EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
			pcancel()
		}
		// One more short poll: anything beyond what is expected shows up too.
		pc, pcancel := context.WithTimeout(context.Background(), time.Second)
		cl.PollFetches(pc).EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
		pcancel()
		sort.Strings(vals)
		return vals
	}
	sort.Strings(want)
	if got := read(kgo.ReadCommitted(), n); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed output: got %d %v, want each of %d inputs transformed once", len(got), got, n)
	}
	if got := read(kgo.ReadUncommitted(), n+abortedRecords); len(got) != n+abortedRecords {
		t.Fatalf("read_uncommitted output: %d records, want %d (with the aborted copies)", len(got), n+abortedRecords)
	}
}
