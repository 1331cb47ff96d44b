package compat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	startTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
	opTimeout    = 30 * time.Second
)

var readyLine = regexp.MustCompile(`^sluice listening on (127\.0\.0\.1:([0-9]+))$`)

// broker is one running `sluice serve` process.
type broker struct {
	Addr   string
	cmd    *exec.Cmd
	stderr *lockedBuffer

	mu          sync.Mutex
	extraStdout []string
	stdoutDone  chan struct{}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimRight(b.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sluiceBin is $SLUICE_BIN, or <repo>/target/release/sluice (the repo is two levels up).
func sluiceBin(t *testing.T) string {
	if b := os.Getenv("SLUICE_BIN"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "target", "release", "sluice")
}

// startBroker runs a broker on 127.0.0.1 with an ephemeral port and a fresh data directory, and
// registers a cleanup that stops it with SIGTERM (killing it if it does not exit) and checks the
// binary's contract: exit code 0 and nothing on stdout besides the readiness line. Cleanups also
// run when the test fails or panics; Pdeathsig kills the broker if the test binary dies anyway.
func startBroker(t *testing.T) *broker {
	t.Helper()
	bin := sluiceBin(t)
	if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("Sluice binary not found or not executable: %s (set SLUICE_BIN)", bin)
	}
	dataDir := t.TempDir() // removed after the broker's cleanup below (cleanups run LIFO)

	b := &broker{stderr: &lockedBuffer{}, stdoutDone: make(chan struct{})}
	b.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	b.cmd.Stderr = b.stderr
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	first := make(chan string, 1)
	go func() {
		defer close(b.stdoutDone)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		} else {
			close(first)
		}
		for sc.Scan() {
			b.mu.Lock()
			b.extraStdout = append(b.extraStdout, sc.Text())
			b.mu.Unlock()
		}
	}()
	go func() {
		<-b.stdoutDone
		exited <- b.cmd.Wait()
	}()

	t.Cleanup(func() {
		select {
		case err := <-exited:
			t.Errorf("broker exited before the end of the test: %v\nstderr:\n%s", err, b.stderr.tail(40))
			return
		default:
		}
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("broker did not shut down cleanly on SIGTERM: %v\nstderr:\n%s", err, b.stderr.tail(40))
			}
		case <-time.After(stopTimeout):
			_ = b.cmd.Process.Kill()
			<-exited
			t.Errorf("broker did not exit within %v of SIGTERM\nstderr:\n%s", stopTimeout, b.stderr.tail(40))
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.extraStdout) > 0 {
			t.Errorf("broker printed more than the readiness line on stdout: %q", b.extraStdout)
		}
		if t.Failed() {
			t.Logf("broker stderr (last lines):\n%s", b.stderr.tail(40))
		}
	})

	select {
	case line, ok := <-first:
		if !ok {
			t.Fatalf("broker closed stdout before announcing readiness\nstderr:\n%s", b.stderr.tail(40))
		}
		m := readyLine.FindStringSubmatch(line)
		if m == nil || m[2] == "0" {
			t.Fatalf("unexpected first stdout line from broker: %q\nstderr:\n%s", line, b.stderr.tail(40))
		}
		b.Addr = m[1]
	case <-time.After(startTimeout):
		t.Fatalf("broker did not announce readiness within %v\nstderr:\n%s", startTimeout, b.stderr.tail(40))
	}
	return b
}

// client makes a kgo client for the broker with default producer settings (idempotent,
// acks=all) plus opts; it is closed when the test ends.
func (b *broker) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := []kgo.Opt{kgo.SeedBrokers(b.Addr), kgo.ClientID("sluice-compat-go")}
	if lvl := clientLogLevel(); lvl != kgo.LogLevelNone {
		all = append(all, kgo.WithLogger(kgo.BasicLogger(os.Stderr, lvl, func() string {
			return time.Now().Format("15:04:05.000 ") + t.Name() + " "
		})))
	}
	all = append(all, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// clientLogLevel is $KGO_LOG (error, warn, info, debug): franz-go's own log on stderr, for
// diagnosing a failure. Off by default.
func clientLogLevel() kgo.LogLevel {
	switch strings.ToLower(os.Getenv("KGO_LOG")) {
	case "error":
		return kgo.LogLevelError
	case "warn":
		return kgo.LogLevelWarn
	case "info":
		return kgo.LogLevelInfo
	case "debug":
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelNone
}

func (b *broker) admin(t *testing.T) *kadm.Client {
	return kadm.NewClient(b.client(t))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic with rf 1 and fails the test on any error.
func (b *broker) createTopic(t *testing.T, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := b.admin(t).CreateTopic(ctxT(t), partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopics %s: %v (%s)", topic, err, resp.ErrMessage)
	}
}

// consume reads exactly n records from the given partitions starting at the given offsets,
// failing on any fetch error, on timeout, and if the partitions hold more than n records from
// those offsets (checked against ListEndOffsets).
func (b *broker) consume(t *testing.T, topic string, start map[int32]int64, n int) []*kgo.Record {
	t.Helper()
	offs := make(map[int32]kgo.Offset, len(start))
	for p, o := range start {
		offs[p] = kgo.NewOffset().At(o)
	}
	cl := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	ctx := ctxT(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("timed out with %d of %d records", len(out), n)
		}
		var errs []string
		fs.EachError(func(tp string, p int32, err error) {
			errs = append(errs, fmt.Sprintf("%s[%d]: %v", tp, p, err))
		})
		if len(errs) > 0 {
			t.Fatalf("fetch errors: %s", strings.Join(errs, "; "))
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != n {
		t.Fatalf("got %d records, want %d", len(out), n)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("ListEndOffsets: %v %v", err, ends.Error())
	}
	var want int64
	for p, o := range start {
		e, ok := ends.Lookup(topic, p)
		if !ok {
			t.Fatalf("no end offset for partition %d", p)
		}
		want += e.Offset - o
	}
	if want != int64(n) {
		t.Fatalf("partitions hold %d records from the start offsets, consumed %d", want, n)
	}
	return out
}

func isErr(err, target error) bool { return errors.Is(err, target) }
