package app

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
)

// smtpSink is a minimal SMTP server on loopback that keeps what it is sent:
// enough of the protocol for net/smtp's SendMail, over a real socket.
type smtpSink struct {
	ln   net.Listener
	mu   sync.Mutex
	rcpt []string
	data []string
}

func newSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) { c.Write([]byte(line + "\r\n")) }
	say("220 sink ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 sink")
		case strings.HasPrefix(cmd, "MAIL FROM"):
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO"):
			s.mu.Lock()
			s.rcpt = append(s.rcpt, strings.TrimSpace(line[len("RCPT TO:"):]))
			s.mu.Unlock()
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.data = append(s.data, b.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func TestInvitationGoesByMailWithSMTP(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		sink := newSMTPSink(t)
		ts := newTestServer(t, db, func(c *Config) {
			c.SMTPURL = "smtp://" + sink.ln.Addr().String() + "?from=noreply@handoff.test"
		})
		_, b := mustBrand(t, db, "Acme", "owner@acme.test")
		c := ts.client()
		c.login("owner@acme.test", testPassword)
		res, body := c.post("/brand/"+b.ID+"/team/invitations", url.Values{"email": {"rev@acme.test"}, "role": {"reviewer"}})
		if res.StatusCode != 303 {
			t.Fatalf("invite = %d\n%s", res.StatusCode, body)
		}
		sink.mu.Lock()
		rcpt, data := append([]string(nil), sink.rcpt...), append([]string(nil), sink.data...)
		sink.mu.Unlock()
		if len(data) != 1 || len(rcpt) != 1 || !strings.Contains(rcpt[0], "rev@acme.test") {
			t.Fatalf("the SMTP server got %d messages to %v; want one to rev@acme.test", len(data), rcpt)
		}
		if !strings.Contains(data[0], "Subject: Join Acme on Handoff") || !strings.Contains(data[0], ts.ts.URL+"/invite/") {
			t.Fatalf("mail without subject or invitation link:\n%s", data[0])
		}
		mails, err := db.Store.ListOutbox(context.Background(), 10)
		if err != nil || len(mails) != 1 || mails[0].SentAt == nil || mails[0].Error != "" {
			t.Fatalf("outbox %+v, %v; want the mail recorded as sent", mails, err)
		}
		// The invitation link in the mail works.
		i := strings.Index(data[0], ts.ts.URL+"/invite/")
		link := strings.Fields(data[0][i:])[0]
		if res, _ := ts.client().get(strings.TrimPrefix(link, ts.ts.URL)); res.StatusCode != 200 {
			t.Fatalf("GET the mailed link = %d; want 200", res.StatusCode)
		}
	})
}
