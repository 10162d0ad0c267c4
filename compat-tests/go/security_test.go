// The Go clients' cells of the security matrix (py/test_security_matrix.py drives them).
//
// Owns: a produce/consume round trip with franz-go, sarama and kafka-go over SSL, mTLS, SASL_PLAINTEXT and
// SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, against the listeners the driver passes in KB_SEC_*
// variables, one "SECCASE client listener mechanism PASS|FAIL|SKIP seconds detail" line per cell.
// Must not: run without those variables (run.sh's plain Go run skips ^TestSecurity; the driver runs only it),
// or decide what is an expected failure (the driver does, per target).
package compat

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	kgosasl "github.com/segmentio/kafka-go/sasl"
	kgoplain "github.com/segmentio/kafka-go/sasl/plain"
	kgoscram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xdgscram "github.com/xdg-go/scram"
)

type secCell struct{ client, listener, mech string }

var secCells = [][2]string{
	{"SSL", "-"}, {"MTLS", "-"},
	{"SASL_PLAINTEXT", "PLAIN"}, {"SASL_SSL", "PLAIN"},
	{"SASL_PLAINTEXT", "SCRAM-SHA-256"}, {"SASL_SSL", "SCRAM-SHA-256"},
	{"SASL_PLAINTEXT", "SCRAM-SHA-512"}, {"SASL_SSL", "SCRAM-SHA-512"},
}

// secRecord is what a round trip writes and must read back, in order.
type secRecord struct {
	Key, Value string
	Headers    []string // "name=value"
}

func (c secCell) addr() string   { return os.Getenv("KB_SEC_BOOTSTRAP_" + c.listener) }
func (c secCell) usesTLS() bool  { return c.listener != "SASL_PLAINTEXT" }
func (c secCell) usesSASL() bool { return c.mech != "-" }
func (c secCell) names() (string, string) {
	tag := strings.ReplaceAll(strings.ToLower(c.client+"-"+c.listener+"-"+c.mech), "_", "-")
	return uniq("sec-" + tag), uniq("secg-" + tag)
}

func (c secCell) cred() (string, string) {
	u, p, _ := strings.Cut(os.Getenv("KB_SEC_CRED_"+strings.ReplaceAll(c.mech, "-", "_")), ":")
	return u, p
}

func (c secCell) want() []secRecord {
	var out []secRecord
	for i := 0; i < 3; i++ {
		out = append(out, secRecord{fmt.Sprintf("k%d", i), fmt.Sprintf("%s %s %s #%d", c.client, c.listener, c.mech, i),
			[]string{fmt.Sprintf("i=%d", i), "via=" + c.listener}})
	}
	return out
}

// tlsConfig verifies the server against the test CA (hostname: the dialed 127.0.0.1, an IP SAN of the
// server certificate) and presents the client certificate on the mTLS listener.
func (c secCell) tlsConfig() (*tls.Config, error) {
	if !c.usesTLS() {
		return nil, nil
	}
	ca, err := os.ReadFile(os.Getenv("KB_SEC_CA"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("no certificate in KB_SEC_CA")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if c.listener == "MTLS" {
		kp, err := tls.LoadX509KeyPair(os.Getenv("KB_SEC_CLIENT_CERT"), os.Getenv("KB_SEC_CLIENT_KEY"))
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

func TestSecurityMatrix(t *testing.T) {
	if os.Getenv("KB_SEC_CA") == "" {
		t.Skip("run by py/test_security_matrix.py, which starts a secured target and sets KB_SEC_*")
	}
	only := os.Getenv("KB_SEC_CASES")
	clients := []struct {
		name string
		fn   func(secCell) error
	}{{"franz", secFranz}, {"sarama", secSarama}, {"kafkago", secKafkago}}
	var out sync.Mutex
	for _, cl := range clients {
		for _, cc := range secCells {
			c := secCell{cl.name, cc[0], cc[1]}
			if only != "" && !strings.Contains(","+only+",", ","+c.listener+"/"+c.mech+",") {
				continue
			}
			fn := cl.fn
			t.Run(c.client+"/"+c.listener+"/"+c.mech, func(t *testing.T) {
				t.Parallel()
				t0 := time.Now()
				err := fn(c)
				status, detail := "PASS", ""
				if err != nil {
					status, detail = "FAIL", strings.Join(strings.Fields(err.Error()), " ")
				}
				out.Lock()
				fmt.Printf("SECCASE %s %s %s %s %.1fs %s\n", c.client, c.listener, c.mech, status,
					time.Since(t0).Seconds(), detail)
				out.Unlock()
				if err != nil {
					t.Error(err)
				}
			})
		}
	}
}

func secCheck(c secCell, got []secRecord) error {
	if want := c.want(); !reflect.DeepEqual(got, want) {
		return fmt.Errorf("read back %v, wanted %v", got, want)
	}
	return nil
}

// ---- franz-go ---------------------------------------------------------------------------------------

func secFranz(c secCell) error {
	opts := []kgo.Opt{kgo.SeedBrokers(c.addr()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.RequestRetries(20), kgo.RetryTimeout(30 * time.Second)}
	cfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	if cfg != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if c.usesSASL() {
		u, p := c.cred()
		var m sasl.Mechanism
		switch c.mech {
		case "PLAIN":
			m = plain.Auth{User: u, Pass: p}.AsMechanism()
		case "SCRAM-SHA-256":
			m = scram.Auth{User: u, Pass: p}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			m = scram.Auth{User: u, Pass: p}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(m))
	}
	topic, group := c.names()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	pr, err := kgo.NewClient(append(opts, kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	for _, w := range c.want() {
		r := &kgo.Record{Topic: topic, Key: []byte(w.Key), Value: []byte(w.Value)}
		for _, h := range w.Headers {
			k, v, _ := strings.Cut(h, "=")
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		recs = append(recs, r)
	}
	err = pr.ProduceSync(ctx, recs...).FirstErr()
	pr.Close()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var got []secRecord
	for len(got) < 3 && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 && ctx.Err() == nil {
			return fmt.Errorf("fetch: %v", errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			g := secRecord{Key: string(r.Key), Value: string(r.Value)}
			for _, h := range r.Headers {
				g.Headers = append(g.Headers, h.Key+"="+string(h.Value))
			}
			got = append(got, g)
		})
	}
	if err := secCheck(c, got); err != nil {
		return fmt.Errorf("group %s: %w", group, err)
	}
	return cl.CommitUncommittedOffsets(ctx)
}

// ---- sarama ------------------------------------------------------------------------------------------

// xdgSCRAM is the SCRAM client sarama asks its users for (Net.SASL.SCRAMClientGeneratorFunc), built on
// xdg-go/scram as sarama's own examples do.
type xdgSCRAM struct {
	hash xdgscram.HashGeneratorFcn
	conv *xdgscram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, pass, authz string) error {
	cl, err := x.hash.NewClient(user, pass, authz)
	if err != nil {
		return err
	}
	x.conv = cl.NewConversation()
	return nil
}
func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

func secSaramaConfig(c secCell) (*sarama.Config, error) {
	sc := saramaConfig()
	sc.Metadata.AllowAutoTopicCreation = true
	// The topic is created by the first produce: a loaded Kafka takes more than sarama's default
	// 3 x 100 ms to give it a leader.
	sc.Producer.Retry.Max, sc.Producer.Retry.Backoff = 15, 300*time.Millisecond
	sc.Metadata.Retry.Max, sc.Metadata.Retry.Backoff = 15, 300*time.Millisecond
	cfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		sc.Net.TLS.Enable, sc.Net.TLS.Config = true, cfg
	}
	if c.usesSASL() {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Version = sarama.SASLHandshakeV1
		sc.Net.SASL.User, sc.Net.SASL.Password = c.cred()
		var h func() hash.Hash
		switch c.mech {
		case "PLAIN":
			sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case "SCRAM-SHA-256":
			sc.Net.SASL.Mechanism, h = sarama.SASLTypeSCRAMSHA256, sha256.New
		case "SCRAM-SHA-512":
			sc.Net.SASL.Mechanism, h = sarama.SASLTypeSCRAMSHA512, sha512.New
		}
		if h != nil {
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: h} }
		}
	}
	return sc, nil
}

type secSaramaHandler struct {
	mu   sync.Mutex
	got  []secRecord
	done chan struct{}
	once sync.Once
}

func (h *secSaramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *secSaramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *secSaramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		g := secRecord{Key: string(m.Key), Value: string(m.Value)}
		for _, x := range m.Headers {
			g.Headers = append(g.Headers, string(x.Key)+"="+string(x.Value))
		}
		h.mu.Lock()
		h.got = append(h.got, g)
		n := len(h.got)
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if n >= 3 {
			s.Commit()
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

func secSarama(c secCell) error {
	sc, err := secSaramaConfig(c)
	if err != nil {
		return err
	}
	topic, group := c.names()
	p, err := sarama.NewSyncProducer([]string{c.addr()}, sc)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	var msgs []*sarama.ProducerMessage
	for _, w := range c.want() {
		m := &sarama.ProducerMessage{Topic: topic, Partition: 0, Key: sarama.StringEncoder(w.Key),
			Value: sarama.StringEncoder(w.Value)}
		for _, h := range w.Headers {
			k, v, _ := strings.Cut(h, "=")
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		msgs = append(msgs, m)
	}
	err = p.SendMessages(msgs)
	_ = p.Close()
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		return fmt.Errorf("produce: %w (first: %v)", err, perrs[0].Err)
	}
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = false
	g, err := sarama.NewConsumerGroup([]string{c.addr()}, group, sc)
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}
	h := &secSaramaHandler{done: make(chan struct{})}
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
	case err = <-errs:
	case <-time.After(40 * time.Second):
		err = errors.New("timed out")
	}
	cancel()
	if err == nil {
		err = <-errs
	}
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("group %s: %w", group, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return secCheck(c, h.got)
}

// ---- kafka-go ----------------------------------------------------------------------------------------

func secKafkago(c secCell) error {
	cfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	var m kgosasl.Mechanism
	if c.usesSASL() {
		u, p := c.cred()
		switch c.mech {
		case "PLAIN":
			m = kgoplain.Mechanism{Username: u, Password: p}
		case "SCRAM-SHA-256":
			m, err = kgoscram.Mechanism(kgoscram.SHA256, u, p)
		case "SCRAM-SHA-512":
			m, err = kgoscram.Mechanism(kgoscram.SHA512, u, p)
		}
		if err != nil {
			return err
		}
	}
	topic, group := c.names()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	tr := &kafka.Transport{TLS: cfg, SASL: m}
	// kafka-go's Writer gives up on the UNKNOWN_TOPIC_OR_PARTITION Kafka answers while it auto-creates a
	// topic: create it first (over the same listener) and wait for its leader.
	cl := &kafka.Client{Addr: kafka.TCP(c.addr()), Transport: tr, Timeout: 20 * time.Second}
	ct, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err == nil {
		err = ct.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	if !waitFor(20*time.Second, func() bool {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		return err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) == 1 &&
			md.Topics[0].Partitions[0].Error == nil && md.Topics[0].Partitions[0].Leader.ID >= 0
	}) {
		return fmt.Errorf("topic %s has no leader", topic)
	}
	w := &kafka.Writer{Addr: kafka.TCP(c.addr()), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, MaxAttempts: 20, Transport: tr}
	var msgs []kafka.Message
	for _, r := range c.want() {
		km := kafka.Message{Key: []byte(r.Key), Value: []byte(r.Value)}
		for _, h := range r.Headers {
			k, v, _ := strings.Cut(h, "=")
			km.Headers = append(km.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
		msgs = append(msgs, km)
	}
	err = w.WriteMessages(ctx, msgs...)
	_ = w.Close()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{c.addr()}, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond,
		Dialer: &kafka.Dialer{Timeout: 10 * time.Second, TLS: cfg, SASLMechanism: m}})
	defer r.Close()
	var got []secRecord
	var last []kafka.Message
	for len(got) < 3 {
		km, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("group %s after %d records: %w", group, len(got), err)
		}
		g := secRecord{Key: string(km.Key), Value: string(km.Value)}
		for _, h := range km.Headers {
			g.Headers = append(g.Headers, h.Key+"="+string(h.Value))
		}
		got = append(got, g)
		last = append(last, km)
	}
	if err := secCheck(c, got); err != nil {
		return fmt.Errorf("group %s: %w", group, err)
	}
	return r.CommitMessages(ctx, last...)
}
