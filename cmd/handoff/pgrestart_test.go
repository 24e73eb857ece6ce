package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// privatePostgres is a PostgreSQL cluster of the test's own, so the test
// can restart it without disturbing the shared server other packages use.
type privatePostgres struct {
	t      *testing.T
	bin    string // PostgreSQL's bin directory
	dir    string // data directory
	port   int
	asUser []string // prefix that runs a command as the postgres user, when we are root
}

// startPrivatePostgres initialises and starts a cluster on a free port. It
// needs PostgreSQL's server binaries; without them the test is skipped,
// except under CI, where it fails.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but PostgreSQL's server binaries (pg_ctl) are not installed")
		}
		t.Skip("PostgreSQL's server binaries (pg_ctl) are not installed")
	}
	sort.Strings(bins)
	p := &privatePostgres{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "handoff-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
	p.start()
	t.Cleanup(func() {
		_ = p.command("pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop").Run()
	})
	return p
}

func (p *privatePostgres) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, p.asUser...), filepath.Join(p.bin, name)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

func (p *privatePostgres) run(name string, args ...string) {
	p.t.Helper()
	if out, err := p.command(name, args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		p.t.Fatalf("%s %v: %v\n%s\nserver log:\n%s", name, args, err, out, log)
	}
}

func (p *privatePostgres) start() {
	p.t.Helper()
	p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir), "start")
}

func (p *privatePostgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// restart stops the cluster (fast: sessions are cut), keeps it down for
// down, and starts it again.
func (p *privatePostgres) restart(down time.Duration) {
	p.t.Helper()
	data := filepath.Join(p.dir, "data")
	p.run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
	time.Sleep(down)
	p.start()
}

// TestPostgresRestartUnderLoad restarts PostgreSQL under two instances
// while simulate runs: the instances reconnect on their own (ready again
// within 10 s), and the same invariants as after a crash hold.
func TestPostgresRestartUnderLoad(t *testing.T) {
	pg := startPrivatePostgres(t)
	a, b, key := startPair(t, pg.url())
	sim := startSimulate(t, "--url", a.url, "--url", b.url, "--api-key", key,
		"--agents", "6", "--rate", "3", "--duration", "12s", "--handle-time", "1", "--settle", "60s")
	sim.waitStarted()
	time.Sleep(2 * time.Second)
	pg.restart(2 * time.Second)
	restarted := time.Now()
	for _, in := range []*instance{a, b} {
		for {
			res, err := http.Get(in.url + "/readyz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(restarted) > 10*time.Second {
				t.Fatalf("%s not ready 10 s after PostgreSQL came back (last: %v)", in.url, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("both instances ready %v after PostgreSQL came back", time.Since(restarted).Round(time.Millisecond))
	sum := sim.summary("after a PostgreSQL restart")
	checkInvariants(t, pg.url(), sum)
	// 36 escalations are tried over 12 s; only those during the outage
	// (about 2 s) may fail.
	if sum.Escalations < 24 {
		t.Fatalf("only %d escalations answered 201; want the run to go on after the restart", sum.Escalations)
	}
}
