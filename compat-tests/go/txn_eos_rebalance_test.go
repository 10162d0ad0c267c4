package compat

// franz-go: kgo.GroupTransactSession with two members and rebalances in the middle of consume-transform-produce
// (issue 16). txn_eos_test.go covers one session alone (with an abort); here a second session joins while the
// first is processing and the first leaves while input is still arriving, so partitions change hands between
// transactions: the session must abort what a revoke interrupts, the new owner must resume from the offsets the
// old one committed in its transactions (KIP-447: OffsetFetch require_stable, fenced stale generations), and the
// output read with read_committed must hold each input record exactly once.
// Owns: the franz-go two-member transaction check. Must not: depend on another test's topics, groups or ids.

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// eosMember runs one GroupTransactSession until stop is closed: poll, transform into out, commit with the
// group's offsets. It counts the records of committed transactions and the transactions End did not commit
// (a revoke in the middle makes the session abort them).
type eosMember struct {
	s         *kgo.GroupTransactSession
	committed atomic.Int64
	aborted   atomic.Int64
	errv      atomic.Value // error: set once by the member's goroutine, read by the test while it runs
	done      chan struct{}
}

func (m *eosMember) err() error {
	if e, ok := m.errv.Load().(error); ok {
		return e
	}
	return nil
}

func startEosMember(t *testing.T, in, out, group string, stop <-chan struct{}) *eosMember {
	s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(bootstrap(t)), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.TransactionalID(uniq("go-eos2-txn")), kgo.ConsumerGroup(group), kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	m := &eosMember{s: s, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-stop
			cancel()
		}()
		for ctx.Err() == nil {
			fs := s.PollRecords(ctx, 10)
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			if err := s.Begin(); err != nil {
				m.errv.Store(fmt.Errorf("begin: %w", err))
				return
			}
			for _, r := range recs {
				o := &kgo.Record{Topic: out, Partition: r.Partition % 2, Value: []byte("T(" + string(r.Value) + ")")}
				s.Produce(context.Background(), o, nil)
			}
			// End flushes what was produced, then commits with the group's offsets unless a revoke happened
			// meanwhile (then it aborts and the records are consumed again by their new owner or by us).
			ectx, ecancel := context.WithTimeout(context.Background(), 30*time.Second)
			committed, err := s.End(ectx, kgo.TryCommit)
			ecancel()
			if err != nil {
				m.errv.Store(fmt.Errorf("end: %w", err))
				return
			}
			if committed {
				m.committed.Add(int64(len(recs)))
			} else {
				m.aborted.Add(1)
			}
		}
	}()
	return m
}

func TestFranzGroupTransactSessionRebalance(t *testing.T) {
	const perStep, parts = 100, 4 // 3*perStep divisible by parts: the same end offset on each partition
	in, out, group := uniq("go-eos2-in"), uniq("go-eos2-out"), uniq("go-eos2-group")
	adm := kadm.NewClient(kgoClient(t))
	kadmCreate(t, adm, in, parts, nil)
	kadmCreate(t, adm, out, 2, nil)
	prod := kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var want []string
	feed := func(from, to int) {
		for i := from; i < to; i++ {
			r := &kgo.Record{Topic: in, Partition: int32(i % parts), Value: []byte(fmt.Sprintf("v%03d", i))}
			if err := prod.ProduceSync(ctxT(t, 20*time.Second), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("T(v%03d)", i))
		}
	}
	wait := func(what string, cond func() bool) {
		if !waitFor(60*time.Second, cond) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	stopA, stopB := make(chan struct{}), make(chan struct{})
	var onceA, onceB sync.Once
	stop := func(once *sync.Once, ch chan struct{}, m *eosMember) {
		once.Do(func() {
			close(ch)
			<-m.done
			m.s.Close() // leaves the group: its partitions go to the other member
		})
	}

	feed(0, perStep)
	a := startEosMember(t, in, out, group, stopA)
	defer stop(&onceA, stopA, a)
	wait("the first member's first commits", func() bool { return a.committed.Load() >= 20 || a.err() != nil })
	// A second member joins in the middle: the group rebalances, partitions move from a to b.
	b := startEosMember(t, in, out, group, stopB)
	defer stop(&onceB, stopB, b)
	feed(perStep, 2*perStep)
	wait("the second member's first commits", func() bool { return b.committed.Load() >= 10 || b.err() != nil })
	// The first member leaves while input still arrives: its partitions move to b.
	stop(&onceA, stopA, a)
	feed(2*perStep, 3*perStep)
	n := int64(3 * perStep)
	wait("the whole input committed", func() bool { return a.committed.Load()+b.committed.Load() >= n || b.err() != nil })
	stop(&onceB, stopB, b)
	if a.err() != nil || b.err() != nil {
		t.Fatalf("member errors: a=%v b=%v", a.err(), b.err())
	}
	t.Logf("committed records a=%d b=%d, transactions not committed a=%d b=%d", a.committed.Load(),
		b.committed.Load(), a.aborted.Load(), b.aborted.Load())
	if got := a.committed.Load() + b.committed.Load(); got != n {
		t.Fatalf("records in committed transactions: %d, want %d (each input once)", got, n)
	}
	if a.committed.Load() == 0 || b.committed.Load() == 0 {
		t.Fatalf("both members must have committed: a=%d b=%d", a.committed.Load(), b.committed.Load())
	}
	// The group's offsets (require_stable: none pending) are the end of every input partition.
	var offs map[int32]int64
	wait("stable committed offsets", func() bool {
		os, err := adm.FetchOffsets(kadm.RequireStable(ctxT(t, 20*time.Second)), group)
		if err != nil || os.Error() != nil {
			return false
		}
		offs = map[int32]int64{}
		os.Each(func(o kadm.OffsetResponse) {
			if o.Topic == in {
				offs[o.Partition] = o.At
			}
		})
		return len(offs) == parts
	})
	for p := int32(0); p < parts; p++ {
		if offs[p] != n/parts {
			t.Fatalf("the group's committed offsets %v, want %d on each of %d partitions", offs, n/parts, parts)
		}
	}
	cl := kgoClient(t, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for int64(len(got)) < n && time.Now().Before(deadline) {
		pc, pcancel := context.WithTimeout(context.Background(), time.Second)
		cl.PollFetches(pc).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		pcancel()
	}
	pc, pcancel := context.WithTimeout(context.Background(), time.Second)
	cl.PollFetches(pc).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	pcancel()
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed output: %d records, want each of %d inputs transformed exactly once", len(got), n)
	}
}
