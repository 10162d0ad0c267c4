// franz-go 1.22, sarama 1.61, kafka-go 0.4.51 (Go): compat tests of the harness (run.sh run_go).
//
// Package compat runs Go Kafka clients (franz-go, sarama, kafka-go) against the broker the compat harness
// gives it (KB_BOOTSTRAP from lib/with_broker.py: a fresh kbroker, or the reference Apache Kafka).
// Owns: the Go client tests and their helpers. Must not: start or stop brokers itself (with_broker.py does),
// or assume anything kbroker-specific without checking target().
package compat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func bootstrap(t *testing.T) string {
	t.Helper()
	for _, k := range []string{"KB_BOOTSTRAP", "KB_TARGET_BOOTSTRAP"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	t.Fatal("no broker: run under compat-tests/lib/with_broker.py (KB_BOOTSTRAP)")
	return ""
}

// target is what run.sh exports: kbroker (default), kafka or external.
func target() string {
	if v := os.Getenv("KB_TARGET"); v != "" {
		return v
	}
	return "kbroker"
}

func uniq(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// compressible values: clients skip compression when it does not shrink the batch, and the tests want
// every codec really used on the wire.
func value(i int) []byte {
	return []byte(fmt.Sprintf("value-%05d-%s", i, strings.Repeat("abcdefgh", 16)))
}

// differs marks a check whose expectation is Apache Kafka's and that kbroker does not meet yet: on kbroker a
// failure is reported as an expected failure (a skip whose reason starts with XFAIL, counted by run.sh), a
// success fails the test so the marker gets removed; on other targets err fails the test as usual.
func differs(t *testing.T, reason string, err error) {
	t.Helper()
	if target() != "kbroker" {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil {
		t.Fatalf("unexpected success on kbroker: remove the differs marker (%s)", reason)
	}
	t.Skipf("XFAIL kbroker differs: %s: %v", reason, err)
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cond()
}
