package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
)

// instance is a `handoff serve` process, killable with SIGKILL.
type instance struct {
	cmd *exec.Cmd
	url string
	log *syncBuffer // its stderr: warnings, errors and, after a failure, its goroutines
}

// instanceLogMax is how much of an instance's stderr a failed test prints.
const instanceLogMax = 256 << 10

// buildHandoff compiles this command once for the tests that need real
// processes.
func buildHandoff(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "handoff")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startInstance starts `handoff serve` on a free port and waits for its URL.
func startInstance(t *testing.T, bin, dbURL string, args ...string) *instance {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(cmd.Environ(), "HANDOFF_DATABASE_URL="+dbURL, "HANDOFF_API_RATE=100000/1s", "HANDOFF_LOG_LEVEL=warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	t.Cleanup(func() {
		// After a failure, an instance still running dumps its goroutines
		// (SIGQUIT) so a stall shows where it waits; then its stderr is
		// printed, the end of it when long.
		if !t.Failed() {
			return
		}
		if cmd.ProcessState == nil && cmd.Process.Signal(syscall.SIGQUIT) == nil {
			exited := make(chan struct{})
			go func() { _, _ = cmd.Process.Wait(); close(exited) }()
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
			}
		}
		out := logs.String()
		if len(out) > instanceLogMax {
			out = "…" + out[len(out)-instanceLogMax:]
		}
		t.Logf("instance %s stderr:\n%s", cmd.Args[1:], out)
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := runningLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return &instance{cmd: cmd, url: u, log: logs}
	case <-time.After(60 * time.Second):
		t.Fatal("the instance did not print its URL")
		return nil
	}
}

// TestCrashOneInstanceUnderLoad runs simulate against two instances on one
// PostgreSQL, kills one with SIGKILL mid-run, and checks by queries that
// nothing was lost or assigned twice: the agents and customers of the dead
// instance reconnect to the other on their own.
func TestCrashOneInstanceUnderLoad(t *testing.T) {
	dbURL := postgresURL(t)
	a, b, key := startPair(t, dbURL)
	sim := startSimulate(t, "--url", a.url, "--url", b.url, "--api-key", key,
		"--agents", "6", "--rate", "3", "--duration", "8s", "--handle-time", "1", "--settle", "40s")
	sim.waitStarted()
	time.Sleep(2 * time.Second)
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	sum := sim.summary("after killing one of two instances")
	checkInvariants(t, dbURL, sum)
}

// startPair starts two instances on one database (the first seeds the demo)
// and returns them with a bot key for the demo brand.
func startPair(t *testing.T, dbURL string) (a, b *instance, key string) {
	t.Helper()
	bin := buildHandoff(t)
	a = startInstance(t, bin, dbURL, "--demo")
	b = startInstance(t, bin, dbURL)
	res := runHandoff(t, dbEnv(dbURL), "apikey", "create", "--brand", "acme")
	if res.code != 0 {
		t.Fatalf("apikey: %s", res)
	}
	return a, b, strings.TrimSpace(res.stdout)
}

// simRun is `handoff simulate` running in the background of a test.
type simRun struct {
	t              *testing.T
	stdout, stderr syncBuffer
	done           chan int
}

func startSimulate(t *testing.T, args ...string) *simRun {
	r := &simRun{t: t, done: make(chan int, 1)}
	go func() {
		r.done <- run(context.Background(), append([]string{"simulate"}, args...), envOf(nil), &r.stdout, &r.stderr)
	}()
	return r
}

// waitStarted returns once the run is under way (escalations counted in
// its progress).
func (r *simRun) waitStarted() {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(r.stderr.String(), "escalations ") || strings.Contains(r.stderr.String(), "escalations 0 ") {
		if time.Now().After(deadline) {
			r.t.Fatalf("simulate did not start:\n%s", r.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// summary waits for the run to end well and returns its JSON summary,
// logged after what.
func (r *simRun) summary(what string) simSummary {
	r.t.Helper()
	var code int
	select {
	case code = <-r.done:
	case <-time.After(3 * time.Minute):
		r.t.Fatalf("simulate did not finish:\n%s", r.stderr.String())
	}
	if code != 0 {
		r.t.Fatalf("simulate exit %d:\n%s", code, r.stderr.String())
	}
	var sum simSummary
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout.String())), &sum); err != nil {
		r.t.Fatalf("summary %q: %v", r.stdout.String(), err)
	}
	r.t.Logf("%s: %s", what, strings.TrimSpace(r.stdout.String()))
	// The run's error tally, so a failing check below shows what went wrong.
	for _, line := range strings.Split(r.stderr.String(), "\n") {
		if strings.HasPrefix(line, "simulate: error:") {
			r.t.Log(line)
		}
	}
	return sum
}

// checkInvariants checks by queries what a run must keep whatever failed
// during it: every escalation answered 201 stored and ended, none assigned
// twice, no message stored twice, one earning per resolved conversation.
func checkInvariants(t *testing.T, dbURL string, sum simSummary) {
	t.Helper()
	st, err := models.Open(context.Background(), dbURL, models.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	count := func(q string, args ...any) int64 {
		var n int64
		if err := st.DB.Raw(q, args...).Scan(&n).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	total := count("SELECT COUNT(*) FROM conversations")
	if sum.Escalations < 10 || total < sum.Escalations {
		t.Fatalf("%d conversations stored for %d escalations answered 201; want every one stored", total, sum.Escalations)
	}
	// A POST that A committed but could not answer is unknown to the bots;
	// only such orphans may still be open.
	if open := count("SELECT COUNT(*) FROM conversations WHERE status IN ('queued', 'offered', 'active')"); open > total-sum.Escalations {
		t.Fatalf("%d conversations still open, more than the %d the bots never heard of", open, total-sum.Escalations)
	}
	if sum.Assigned < sum.Escalations || sum.Resolved != sum.Assigned {
		t.Fatalf("summary %+v: want every escalation assigned and resolved despite the crash", sum)
	}
	if twice := count(`SELECT COUNT(*) FROM (SELECT conversation_id FROM offers WHERE status = 'accepted'
		GROUP BY conversation_id HAVING COUNT(*) > 1) AS x`); twice != 0 {
		t.Fatalf("%d conversations were assigned twice", twice)
	}
	if dup := count(`SELECT COUNT(*) FROM (SELECT conversation_id, sender, client_id FROM messages WHERE client_id IS NOT NULL
		GROUP BY conversation_id, sender, client_id HAVING COUNT(*) > 1) AS x`); dup != 0 {
		t.Fatalf("%d messages were stored twice", dup)
	}
	if earned := count("SELECT COUNT(*) FROM earnings"); earned != count("SELECT COUNT(*) FROM conversations WHERE status IN ('resolved', 'closed')") {
		t.Fatalf("%d earnings for the resolved conversations; want one each", earned)
	}
}
