package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// webSession is one browser: its own cookies against one base URL, over
// the simulation's shared HTTP client. Sessions live in the database, so
// the session cookie also works on the other instances.
type webSession struct {
	client  *http.Client
	base    string
	cookies map[string]string
}

const (
	simSessionCookie = "handoff_session"
	simCSRFCookie    = "handoff_csrf"
)

var (
	// errBadLogin is a sign-in refused for the email or password.
	errBadLogin = errors.New("email or password refused")
	// errServer is a 5xx answer: worth one more try.
	errServer = errors.New("server error")
)

func newWebSession(client *http.Client, base string) *webSession {
	return &webSession{client: client, base: base, cookies: map[string]string{}}
}

// do sends one request with the session's cookies and keeps the cookies
// the answer sets. It returns the status, the Location and the body.
func (w *webSession) do(ctx context.Context, method, path string, form url.Values) (int, string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, body)
	if err != nil {
		return 0, "", "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if len(w.cookies) > 0 {
		parts := make([]string, 0, len(w.cookies))
		for k, v := range w.cookies {
			parts = append(parts, k+"="+v)
		}
		req.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	res, err := w.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return 0, "", "", err
	}
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(w.cookies, c.Name)
		} else {
			w.cookies[c.Name] = c.Value
		}
	}
	return res.StatusCode, res.Header.Get("Location"), string(b), nil
}

// csrf returns the double-submit token, fetching a page to get the cookie
// when the session has none yet.
func (w *webSession) csrf(ctx context.Context, page string) (string, error) {
	if t := w.cookies[simCSRFCookie]; t != "" {
		return t, nil
	}
	status, _, _, err := w.do(ctx, http.MethodGet, page, nil)
	if err != nil {
		return "", err
	}
	if t := w.cookies[simCSRFCookie]; t != "" {
		return t, nil
	}
	return "", fmt.Errorf("GET %s answered %d without a %s cookie", page, status, simCSRFCookie)
}

// post submits a form with the CSRF token.
func (w *webSession) post(ctx context.Context, page, path string, form url.Values) (int, string, string, error) {
	tok, err := w.csrf(ctx, page)
	if err != nil {
		return 0, "", "", err
	}
	form.Set("_csrf", tok)
	return w.do(ctx, http.MethodPost, path, form)
}

// login signs in through the /login form: errBadLogin when the email or
// password is refused. A server error is tried again: signing in twice is
// harmless.
func (w *webSession) login(ctx context.Context, email, password string) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 && !sleepCtx(ctx, backoff(attempt+1)) {
			return ctx.Err()
		}
		if err = w.loginOnce(ctx, email, password); !errors.Is(err, errServer) {
			return err
		}
	}
	return err
}

func (w *webSession) loginOnce(ctx context.Context, email, password string) error {
	status, loc, _, err := w.post(ctx, "/login", "/login", url.Values{"email": {email}, "password": {password}})
	switch {
	case err != nil:
		return err
	case status == http.StatusSeeOther && w.cookies[simSessionCookie] != "":
		return nil
	case status == http.StatusUnauthorized:
		return errBadLogin
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("sign-in as %s was rate limited (429); raise HANDOFF_LOGIN_RATE (serve --login-rate) or wait", email)
	case status >= 500:
		return fmt.Errorf("sign-in as %s answered %d: %w", email, status, errServer)
	default:
		return fmt.Errorf("sign-in as %s answered %d (to %q)", email, status, loc)
	}
}

// apply submits the agent application form; on success the server has
// also signed the new agent in. ok is false when the form was refused
// (422: most likely the email exists already).
func (w *webSession) apply(ctx context.Context, name, email, password, language string, capacity int, skills []string) (ok bool, err error) {
	form := url.Values{
		"display_name": {name}, "email": {email}, "password": {password}, "languages": {language},
		"max_concurrent": {fmt.Sprint(capacity)}, "bio": {"A simulated agent for load tests."},
	}
	for i, sk := range skills {
		form.Set(fmt.Sprintf("skill_%d", i+1), sk)
		form.Set(fmt.Sprintf("level_%d", i+1), "5")
	}
	status, _, _, err := w.post(ctx, "/apply", "/apply", form)
	switch {
	case err != nil:
		return false, err
	case status == http.StatusSeeOther && w.cookies[simSessionCookie] != "":
		return true, nil
	case status == http.StatusUnprocessableEntity:
		return false, nil
	case status >= 500:
		return false, fmt.Errorf("apply as %s answered %d: %w", email, status, errServer)
	default:
		return false, fmt.Errorf("apply as %s answered %d", email, status)
	}
}

var (
	adminAgentHref = regexp.MustCompile(`/admin/agents/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})`)
	emailText      = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
)

// parsePendingAgents reads the operator's list of applications and returns
// email → agent id: each row links /admin/agents/<id> and shows the email
// after the link, before the next agent's link.
func parsePendingAgents(page string) map[string]string {
	out := map[string]string{}
	ms := adminAgentHref.FindAllStringSubmatchIndex(page, -1)
	for i := 0; i < len(ms); i++ {
		id := page[ms[i][2]:ms[i][3]]
		end := len(page)
		j := i + 1
		for ; j < len(ms); j++ {
			if page[ms[j][2]:ms[j][3]] != id {
				end = ms[j][0]
				break
			}
		}
		if email := emailText.FindString(html.UnescapeString(page[ms[i][1]:end])); email != "" {
			if _, seen := out[strings.ToLower(email)]; !seen {
				out[strings.ToLower(email)] = id
			}
		}
		i = j - 1
	}
	return out
}

// approvePending approves, as the operator, every pending application whose
// email is in want, page after page of the pending list, and returns how
// many it approved.
func (w *webSession) approvePending(ctx context.Context, want map[string]bool) (int, error) {
	approved := 0
	done := map[string]bool{}
	for {
		status, _, page, err := w.do(ctx, http.MethodGet, "/admin/agents?status=pending", nil)
		if err != nil {
			return approved, err
		}
		if status != http.StatusOK {
			return approved, fmt.Errorf("GET /admin/agents?status=pending answered %d; is the operator account an operator?", status)
		}
		var ids []string
		for email, id := range parsePendingAgents(page) {
			if want[email] {
				if done[id] {
					return approved, fmt.Errorf("agent %s (%s) is still pending after its approval was accepted", id, email)
				}
				done[id] = true
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return approved, nil
		}
		var (
			wg       sync.WaitGroup
			count    atomic.Int64
			mu       sync.Mutex
			firstErr error
			next     = make(chan string)
		)
		tok, err := w.csrf(ctx, "/admin")
		if err != nil {
			return approved, err
		}
		cookie := w.cookies[simSessionCookie]
		for range min(8, len(ids)) {
			wg.Go(func() {
				// Each worker its own copy of the cookies: webSession is not
				// safe for concurrent use.
				ws := newWebSession(w.client, w.base)
				ws.cookies[simSessionCookie], ws.cookies[simCSRFCookie] = cookie, tok
				for id := range next {
					status, _, _, err := ws.post(ctx, "/admin", "/admin/agents/"+id+"/approve", url.Values{})
					if err == nil && status != http.StatusSeeOther {
						err = fmt.Errorf("approve %s answered %d", id, status)
					}
					if err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, err)
						mu.Unlock()
						continue
					}
					count.Add(1)
				}
			})
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
		approved += int(count.Load())
		if firstErr != nil {
			return approved, firstErr
		}
	}
}
