package app

import (
	"context"
	"fmt"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Mailer delivers one message. With no SMTP configured there is none, and
// mail stays in the outbox page for the operator.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// smtpMailer sends through an SMTP relay named by a URL:
// smtp://user:pass@host:587?from=noreply@example.com
type smtpMailer struct {
	addr string
	from string
	auth smtp.Auth
}

func newMailer(raw string) (Mailer, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
		return nil, fmt.Errorf("HANDOFF_SMTP_URL: want smtp://user:pass@host:port?from=address")
	}
	from := u.Query().Get("from")
	if from == "" {
		from = "handoff@" + u.Hostname()
	}
	m := &smtpMailer{addr: u.Host, from: from}
	if u.Port() == "" {
		m.addr = net.JoinHostPort(u.Hostname(), "587")
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		m.auth = smtp.PlainAuth("", u.User.Username(), pw, u.Hostname())
	}
	return m, nil
}

func (m *smtpMailer) Send(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(to+subject, "\r\n") {
		return fmt.Errorf("mail header contains a line break")
	}
	msg := "From: " + m.from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(body, "\n", "\r\n")
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(m.addr, m.auth, m.from, []string{to}, []byte(msg)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendMail records the message in the outbox and, when SMTP is set, sends it
// and records the outcome. A failed send is logged and kept in the outbox;
// it does not fail the user's action.
func (s *Server) sendMail(ctx context.Context, to, subject, body string) error {
	m, err := s.store.QueueMail(ctx, to, subject, body)
	if err != nil {
		return err
	}
	if s.mailer == nil {
		return nil
	}
	sendCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	errText := ""
	if err := s.mailer.Send(sendCtx, to, subject, body); err != nil {
		s.log.Warn("mail not sent", "mail_id", m.ID, "err", err)
		errText = err.Error()
	}
	return s.store.MarkMailSent(ctx, m.ID, errText)
}
