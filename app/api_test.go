package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
	"gorm.io/gorm"
)

// apiFixture is a server with one brand whose catalogue holds billing and
// refunds, and one API key of that brand.
type apiFixture struct {
	ts    *testServer
	db    *modeltest.DB
	owner *models.User
	brand *models.Brand
	key   string
	keyID string
}

// apiHighRate lifts the per-key rate limit out of the way: the fake clock
// stands still, so the default 50/s would otherwise count a whole test.
func apiHighRate(c *Config) { c.APIRate = Rate{N: 100000, Per: time.Minute} }

func apiSetup(t *testing.T, db *modeltest.DB, opts ...func(*Config)) *apiFixture {
	t.Helper()
	ts := newTestServer(t, db, append([]func(*Config){apiHighRate}, opts...)...)
	f := &apiFixture{ts: ts, db: db}
	f.owner, f.brand = mustBrand(t, db, "Acme", "owner@acme.test")
	f.key, f.keyID = apiMustSkillsAndKey(t, db, f.owner, f.brand)
	return f
}

// apiMustSkillsAndKey adds billing and refunds to the brand's catalogue and
// creates an API key.
func apiMustSkillsAndKey(t *testing.T, db *modeltest.DB, owner *models.User, b *models.Brand) (key, keyID string) {
	t.Helper()
	ctx := context.Background()
	for _, s := range []string{"Billing", "Refunds"} {
		if _, err := db.Store.AddSkill(ctx, owner.ID, b.ID, s); err != nil {
			t.Fatalf("AddSkill(%q): %v", s, err)
		}
	}
	key, k, err := db.Store.CreateAPIKey(ctx, owner.ID, b.ID, "bot")
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	return key, k.ID
}

// apiResp is one answer of the API, read whole.
type apiResp struct {
	what   string
	status int
	header http.Header
	body   string
}

func (r apiResp) String() string {
	b := r.body
	if len(b) > 600 {
		b = b[:600] + "…"
	}
	return fmt.Sprintf("%s = %d\n%s", r.what, r.status, b)
}

// apiRaw sends body as is with the given content type (none when empty) and
// bearer key (no Authorization when empty).
func apiRaw(t testing.TB, ts *testServer, method, path, key, contentType string, body []byte) apiResp {
	t.Helper()
	r, err := apiSend(ts, method, path, key, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// apiSend is apiRaw for goroutines other than the test's: it returns the
// error instead of failing.
func apiSend(ts *testServer, method, path, key, contentType string, body []byte) (apiResp, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.ts.URL+path, rd)
	if err != nil {
		return apiResp{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return apiResp{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return apiResp{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return apiResp{what: method + " " + path, status: res.StatusCode, header: res.Header, body: string(b)}, nil
}

// apiCall sends v as JSON (no body when nil) with the key.
func apiCall(t testing.TB, ts *testServer, method, path, key string, v any) apiResp {
	t.Helper()
	if v == nil {
		return apiRaw(t, ts, method, path, key, "", nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return apiRaw(t, ts, method, path, key, "application/json", b)
}

func (f *apiFixture) call(t testing.TB, method, path string, v any) apiResp {
	t.Helper()
	return apiCall(t, f.ts, method, path, f.key, v)
}

func (f *apiFixture) escalate(t testing.TB, body map[string]any) apiResp {
	t.Helper()
	return f.call(t, http.MethodPost, "/api/v1/escalations", body)
}

// apiEscalationBody is a valid escalation with a transcript of two lines.
func apiEscalationBody(externalID string) map[string]any {
	return map[string]any{
		"external_id": externalID,
		"customer":    map[string]any{"name": "Ada", "email": "ada@example.com"},
		"language":    "en",
		"skills":      []string{"billing", "refunds"},
		"priority":    5,
		"reason":      "asked for a human",
		"summary":     "Charged twice for order 1142; bot could not refund.",
		"transcript": []map[string]any{
			{"role": "customer", "text": "I was charged twice", "at": "2026-11-27T09:59:00Z"},
			{"role": "bot", "text": "I can't refund that, sorry.", "at": "2026-11-27T09:59:05Z"},
		},
		"metadata": map[string]string{"order": "1142"},
	}
}

func apiWith(body map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(body))
	for k, v := range body {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func apiExpect(t testing.TB, r apiResp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%v\nwant %d", r, status)
	}
}

// apiObject decodes a JSON object answer into raw fields, so nulls can be
// told from missing fields and zeros.
func apiObject(t testing.TB, r apiResp) map[string]json.RawMessage {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q; want application/json\n%s", r.what, ct, r.body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("%s: body is not a JSON object: %v\n%s", r.what, err, r.body)
	}
	return m
}

func apiDecode(t testing.TB, r apiResp, dst any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), dst); err != nil {
		t.Fatalf("%s: decode body: %v\n%s", r.what, err, r.body)
	}
}

func apiField[T any](t testing.TB, r apiResp, m map[string]json.RawMessage, name string) T {
	t.Helper()
	var v T
	raw, ok := m[name]
	if !ok {
		t.Fatalf("%s: no field %q in\n%s", r.what, name, r.body)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: field %q = %s: %v", r.what, name, raw, err)
	}
	return v
}

func apiIsNull(m map[string]json.RawMessage, name string) bool {
	raw, ok := m[name]
	return ok && string(raw) == "null"
}

// apiProblemDoc is the problem+json body.
type apiProblemDoc struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Errors []models.FieldError `json:"errors"`
}

// apiProblem checks r is a problem+json answer of status and returns it.
func apiProblem(t testing.TB, r apiResp, status int) apiProblemDoc {
	t.Helper()
	apiExpect(t, r, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%s: Content-Type %q; want application/problem+json\n%s", r.what, ct, r.body)
	}
	var p apiProblemDoc
	apiDecode(t, r, &p)
	if p.Status != status {
		t.Fatalf("%s: problem status %d; want %d\n%s", r.what, p.Status, status, r.body)
	}
	return p
}

func apiHasFieldError(p apiProblemDoc, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field {
			return true
		}
	}
	return false
}

func apiNoLeak(t testing.TB, r apiResp, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(r.body, s) {
			t.Errorf("%s: body shows %q\n%s", r.what, s, r.body)
		}
	}
}

// apiConvDoc is GET /api/v1/conversations/{id}.
type apiConvDoc struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Messages []struct {
		Seq      int     `json:"seq"`
		Sender   string  `json:"sender"`
		Text     string  `json:"text"`
		ClientID *string `json:"client_id"`
	} `json:"messages"`
}

func (f *apiFixture) show(t testing.TB, id string) (apiResp, apiConvDoc) {
	t.Helper()
	r := f.call(t, http.MethodGet, "/api/v1/conversations/"+id, nil)
	apiExpect(t, r, http.StatusOK)
	var c apiConvDoc
	apiDecode(t, r, &c)
	return r, c
}

func TestAPIEscalationCreate(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)

		r := f.escalate(t, apiEscalationBody("chat-1"))
		apiExpect(t, r, http.StatusCreated)
		m := apiObject(t, r)
		id := apiField[string](t, r, m, "id")
		if !models.ValidID(id) {
			t.Errorf("%s: id %q is not a uuid", r.what, id)
		}
		if loc := r.header.Get("Location"); loc != "/api/v1/conversations/"+id {
			t.Errorf("%s: Location %q; want /api/v1/conversations/%s", r.what, loc, id)
		}
		if s := apiField[string](t, r, m, "status"); s != "queued" {
			t.Errorf("%s: status %q; want queued", r.what, s)
		}
		if u := apiField[string](t, r, m, "customer_url"); !strings.HasPrefix(u, f.ts.ts.URL+"/c/") || len(u) <= len(f.ts.ts.URL+"/c/") {
			t.Errorf("%s: customer_url %q; want %s/c/<token>", r.what, u, f.ts.ts.URL)
		}
		if p := apiField[int](t, r, m, "queue_position"); p != 1 {
			t.Errorf("%s: queue_position %d; want 1", r.what, p)
		}
		if n := apiField[int](t, r, m, "eligible_agents_online"); n != 0 {
			t.Errorf("%s: eligible_agents_online %d; want 0", r.what, n)
		}
		if !apiIsNull(m, "estimated_wait_seconds") {
			t.Errorf("%s: estimated_wait_seconds = %s; want null with nobody online", r.what, m["estimated_wait_seconds"])
		}

		// An approved agent with billing (level 4, English) comes online.
		a := mustAgent(t, db, "agent@example.com", true)
		if err := db.Store.SetPresence(context.Background(), a.ID, models.PresenceOnline); err != nil {
			t.Fatalf("SetPresence: %v", err)
		}
		// Equal priority: later in line. The clock moves, or the tie
		// would fall to the ids.
		db.Clock.Advance(time.Second)
		r = f.escalate(t, apiWith(apiEscalationBody("chat-2"), "skills", []string{"billing"}))
		apiExpect(t, r, http.StatusCreated)
		m = apiObject(t, r)
		if p := apiField[int](t, r, m, "queue_position"); p != 2 {
			t.Errorf("%s (equal priority, later): queue_position %d; want 2", r.what, p)
		}
		if n := apiField[int](t, r, m, "eligible_agents_online"); n != 1 {
			t.Errorf("%s: eligible_agents_online %d; want 1 (an online agent with billing)", r.what, n)
		}
		if w := apiField[*int](t, r, m, "estimated_wait_seconds"); w == nil || *w <= 0 {
			t.Errorf("%s: estimated_wait_seconds = %s; want a positive number with an eligible agent online", r.what, m["estimated_wait_seconds"])
		}

		db.Clock.Advance(time.Second)
		r = f.escalate(t, apiWith(apiEscalationBody("chat-3"), "priority", 9))
		apiExpect(t, r, http.StatusCreated)
		m = apiObject(t, r)
		if p := apiField[int](t, r, m, "queue_position"); p != 1 {
			t.Errorf("%s (priority 9): queue_position %d; want 1", r.what, p)
		}
		// The agent lacks refunds: not eligible for this one.
		if n := apiField[int](t, r, m, "eligible_agents_online"); n != 0 {
			t.Errorf("%s (needs refunds too): eligible_agents_online %d; want 0", r.what, n)
		}
	})
}

// TestAPIQueuePositionPastTheLimit: behind more than PlaceCountLimit, the
// database says only "at least"; once a sweep here has read the line, the
// escalation's answer and a waiting customer's place come from it, exact
// as of that read.
func TestAPIQueuePositionPastTheLimit(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)
		ctx := context.Background()
		const limit = models.PlaceCountLimit
		now := db.Clock.Now()
		var line []models.Conversation
		for i := range limit + 5 {
			line = append(line, models.Conversation{ID: models.NewID(), BrandID: f.brand.ID, ExternalID: fmt.Sprintf("line-%d", i),
				Status: models.ConvQueued, Language: "en", Priority: 5, QueuedAt: now.Add(time.Duration(i) * time.Millisecond),
				CreatedAt: now, UpdatedAt: now})
		}
		if err := db.Store.DB.CreateInBatches(line, 50).Error; err != nil {
			t.Fatal(err)
		}
		db.Clock.Advance(time.Second)
		position := func(ext string) int {
			t.Helper()
			r := f.escalate(t, apiEscalationBody(ext))
			apiExpect(t, r, http.StatusCreated)
			return apiField[int](t, r, apiObject(t, r), "queue_position")
		}
		if p := position("before-sweep"); p != limit+1 {
			t.Fatalf("behind %d before any sweep: queue_position %d; want %d (at least)", len(line), p, limit+1)
		}
		if err := f.ts.srv.dispatchPass(ctx); err != nil { // nobody is online: the line stays
			t.Fatal(err)
		}
		db.Clock.Advance(time.Second)
		if p := position("after-sweep"); p != len(line)+2 {
			t.Fatalf("behind %d and the first escalation: queue_position %d; want %d", len(line), p, len(line)+2)
		}
		// A waiting customer's place, as their page's socket gets it.
		b, err := db.Store.Brand(ctx, f.brand.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []int{3, limit - 1, limit, limit + 4} {
			_, place, err := db.Store.ConversationPlaced(ctx, line[k].ID)
			if err != nil {
				t.Fatal(err)
			}
			q, err := f.ts.srv.queueInfo(ctx, b, &line[k], place)
			if err != nil || q.Position != k+1 {
				t.Fatalf("#%d in line: position %d, %v; want %d", k+1, q.Position, err, k+1)
			}
		}
		// A line this instance read long ago is not used.
		db.Clock.Advance(lineFresh + time.Second)
		if p := position("stale-line"); p != limit+1 {
			t.Fatalf("with a stale line: queue_position %d; want %d (at least)", p, limit+1)
		}
	})
}

func TestAPIEscalationIdempotentAndCancel(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)
		ctx := context.Background()

		first := f.escalate(t, apiEscalationBody("chat-7"))
		apiExpect(t, first, http.StatusCreated)
		id := apiField[string](t, first, apiObject(t, first), "id")

		again := apiWith(apiEscalationBody("chat-7"), "language", "pt-BR", "summary", "A different summary", "priority", 1,
			"transcript", []map[string]any{{"role": "customer", "text": "second transcript line"}})
		r := f.escalate(t, again)
		apiExpect(t, r, http.StatusOK)
		m := apiObject(t, r)
		if got := apiField[string](t, r, m, "id"); got != id {
			t.Fatalf("%s again: id %q; want the open conversation %q", r.what, got, id)
		}
		if loc := r.header.Get("Location"); loc != "" {
			t.Errorf("%s again: Location %q on a 200", r.what, loc)
		}
		conv, err := db.Store.Conversation(ctx, f.brand.ID, id)
		if err != nil {
			t.Fatalf("Conversation: %v", err)
		}
		if conv.Language != "en" || conv.Summary != "Charged twice for order 1142; bot could not refund." || conv.Priority != 5 {
			t.Errorf("repeat applied its body: language %q, summary %q, priority %d; want the first's", conv.Language, conv.Summary, conv.Priority)
		}
		sr, shown := f.show(t, id)
		if len(shown.Messages) != 2 {
			t.Errorf("%s: %d messages; want the first transcript's 2\n%s", sr.what, len(shown.Messages), sr.body)
		}
		apiNoLeak(t, sr, "second transcript line")

		cancel := "/api/v1/conversations/" + id + "/cancel"
		r = f.call(t, http.MethodPost, cancel, nil)
		apiExpect(t, r, http.StatusOK)
		if s := apiField[string](t, r, apiObject(t, r), "status"); s != "abandoned" {
			t.Errorf("%s: status %q; want abandoned", r.what, s)
		}

		r = f.escalate(t, apiEscalationBody("chat-7"))
		apiExpect(t, r, http.StatusCreated)
		if got := apiField[string](t, r, apiObject(t, r), "id"); got == id {
			t.Errorf("%s after cancel: id %q is the abandoned one; want a new conversation", r.what, got)
		}

		r = f.call(t, http.MethodPost, cancel, nil)
		apiProblem(t, r, http.StatusConflict)
	})
}

func TestAPIEscalationValidation(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)
		base := apiEscalationBody("chat-v")
		noExternal := apiWith(base)
		delete(noExternal, "external_id")
		many := make([]map[string]any, models.MaxTranscriptEntries+1)
		for i := range many {
			many[i] = map[string]any{"role": "customer", "text": "hello"}
		}
		cases := []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"UnknownSkill", apiWith(base, "skills", []string{"astrology"}), "skills[0]"},
			{"BadLanguage", apiWith(base, "language", "english!!"), "language"},
			{"Priority10", apiWith(base, "priority", 10), "priority"},
			{"PriorityNegative", apiWith(base, "priority", -1), "priority"},
			{"ExternalIDMissing", noExternal, "external_id"},
			{"ExternalIDTooLong", apiWith(base, "external_id", strings.Repeat("x", models.MaxExternalIDLen+1)), "external_id"},
			{"TranscriptTooLong", apiWith(base, "transcript", many), "transcript"},
			{"TranscriptAgentRole", apiWith(base, "transcript", []map[string]any{{"role": "agent", "text": "hi"}}), "transcript[0].role"},
			{"EmailMalformed", apiWith(base, "customer", map[string]any{"name": "Ada", "email": "ada@"}), "customer.email"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := apiProblem(t, f.escalate(t, tc.body), http.StatusUnprocessableEntity)
				if !apiHasFieldError(p, tc.field) {
					t.Errorf("errors %+v; want one for %q", p.Errors, tc.field)
				}
			})
		}
		var n int64
		if err := db.Store.DB.Model(&models.Conversation{}).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d conversations stored by invalid escalations; want 0", n)
		}
	})
}

func TestAPIRequestErrors(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)
		const path = "/api/v1/escalations"
		valid, _ := json.Marshal(apiEscalationBody("chat-e"))

		t.Run("MalformedJSON", func(t *testing.T) {
			apiProblem(t, apiRaw(t, f.ts, http.MethodPost, path, f.key, "application/json", []byte("{")), http.StatusBadRequest)
		})
		t.Run("WrongType", func(t *testing.T) {
			p := apiProblem(t, f.escalate(t, apiWith(apiEscalationBody("chat-e"), "priority", "high")), http.StatusBadRequest)
			if !strings.Contains(p.Detail, "priority") {
				t.Errorf("detail %q; want it to name the field priority", p.Detail)
			}
		})
		t.Run("UnsupportedMediaType", func(t *testing.T) {
			apiProblem(t, apiRaw(t, f.ts, http.MethodPost, path, f.key, "text/plain", valid), http.StatusUnsupportedMediaType)
		})
		t.Run("TooLarge", func(t *testing.T) {
			big := apiWith(apiEscalationBody("chat-big"), "summary", strings.Repeat("s", 300<<10))
			apiProblem(t, f.escalate(t, big), http.StatusRequestEntityTooLarge)
		})

		unauthorized := func(t *testing.T, key string) {
			t.Helper()
			r := apiRaw(t, f.ts, http.MethodPost, path, key, "application/json", valid)
			apiProblem(t, r, http.StatusUnauthorized)
			if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q; want a Bearer challenge", r.what, h)
			}
		}
		t.Run("NoAuthorization", func(t *testing.T) { unauthorized(t, "") })
		t.Run("WrongKey", func(t *testing.T) { unauthorized(t, models.APIKeyPrefix+"not-a-real-key-at-all") })
		t.Run("RevokedKey", func(t *testing.T) {
			key, k, err := db.Store.CreateAPIKey(context.Background(), f.owner.ID, f.brand.ID, "old bot")
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Store.RevokeAPIKey(context.Background(), f.owner.ID, f.brand.ID, k.ID); err != nil {
				t.Fatal(err)
			}
			unauthorized(t, key)
		})

		var n int64
		if err := db.Store.DB.Model(&models.Conversation{}).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d conversations stored by refused requests; want 0", n)
		}
	})
}

func TestAPIRateLimit(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db, func(c *Config) { c.APIRate = Rate{N: 3, Per: time.Minute} })
		for i := 1; i <= 3; i++ {
			r := f.escalate(t, apiEscalationBody("chat-r"))
			if r.status != http.StatusCreated && r.status != http.StatusOK {
				t.Fatalf("call %d: %v\nwant 201 or 200 within the limit", i, r)
			}
		}
		r := f.escalate(t, apiEscalationBody("chat-r"))
		p := apiProblem(t, r, http.StatusTooManyRequests)
		if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("%s: Retry-After %q; want seconds to wait", r.what, ra)
		}
		if !strings.Contains(p.Detail, "HANDOFF_API_RATE") {
			t.Errorf("%s: detail %q; want it to name HANDOFF_API_RATE", r.what, p.Detail)
		}
	})
}

func TestAPIConversationShow(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)
		r := f.escalate(t, apiEscalationBody("chat-s"))
		apiExpect(t, r, http.StatusCreated)
		id := apiField[string](t, r, apiObject(t, r), "id")

		db.Clock.Advance(30 * time.Second)
		r, shown := f.show(t, id)
		m := apiObject(t, r)
		if shown.ID != id || shown.Status != "queued" {
			t.Errorf("%s: id %q status %q; want %q queued", r.what, shown.ID, shown.Status, id)
		}
		for _, k := range []string{"agent", "assigned_at", "resolved_at", "rating"} {
			if !apiIsNull(m, k) {
				t.Errorf("%s: %s = %s; want null while queued", r.what, k, m[k])
			}
		}
		if at := apiField[time.Time](t, r, m, "created_at"); !at.Equal(modeltest.Epoch) {
			t.Errorf("%s: created_at %v; want %v", r.what, at, modeltest.Epoch)
		}
		if w := apiField[int](t, r, m, "wait_seconds"); w < 30 {
			t.Errorf("%s: wait_seconds %d after 30 s; want ≥ 30", r.what, w)
		}
		want := []struct{ sender, text string }{{"customer", "I was charged twice"}, {"bot", "I can't refund that, sorry."}}
		if len(shown.Messages) != len(want) {
			t.Fatalf("%s: %d messages; want the transcript's %d\n%s", r.what, len(shown.Messages), len(want), r.body)
		}
		for i, w := range want {
			got := shown.Messages[i]
			if got.Seq != i+1 || got.Sender != w.sender || got.Text != w.text {
				t.Errorf("%s: message %d = seq %d %s %q; want seq %d %s %q", r.what, i, got.Seq, got.Sender, got.Text, i+1, w.sender, w.text)
			}
		}

		// Another brand's conversation: 404, and nothing of it shown.
		owner2, b2 := mustBrand(t, db, "Other", "owner@other.test")
		key2, _ := apiMustSkillsAndKey(t, db, owner2, b2)
		other := apiWith(apiEscalationBody("chat-secret-ext"), "transcript", []map[string]any{{"role": "customer", "text": "other brand secret line"}})
		r = apiCall(t, f.ts, http.MethodPost, "/api/v1/escalations", key2, other)
		apiExpect(t, r, http.StatusCreated)
		otherID := apiField[string](t, r, apiObject(t, r), "id")

		for _, tc := range []struct{ name, id string }{{"OtherBrand", otherID}, {"Unknown", models.NewID()}, {"NotUUID", "not-a-uuid"}} {
			t.Run(tc.name, func(t *testing.T) {
				r := f.call(t, http.MethodGet, "/api/v1/conversations/"+tc.id, nil)
				apiProblem(t, r, http.StatusNotFound)
				apiNoLeak(t, r, "chat-secret-ext", "other brand secret line", "ada@example.com")
			})
		}
	})
}

func TestAPIMessageCreate(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)
		r := f.escalate(t, apiEscalationBody("chat-m"))
		apiExpect(t, r, http.StatusCreated)
		id := apiField[string](t, r, apiObject(t, r), "id")
		path := "/api/v1/conversations/" + id + "/messages"

		r = f.call(t, http.MethodPost, path, map[string]string{"text": "are you there?", "client_id": "m-1"})
		apiExpect(t, r, http.StatusCreated)
		if seq := apiField[int](t, r, apiObject(t, r), "seq"); seq != 3 {
			t.Errorf("%s: seq %d; want 3 after a transcript of 2", r.what, seq)
		}
		r = f.call(t, http.MethodPost, path, map[string]string{"text": "are you there?", "client_id": "m-1"})
		apiExpect(t, r, http.StatusOK)
		if seq := apiField[int](t, r, apiObject(t, r), "seq"); seq != 3 {
			t.Errorf("%s repeated client_id: seq %d; want the stored 3", r.what, seq)
		}
		sr, shown := f.show(t, id)
		count := 0
		for _, m := range shown.Messages {
			if m.ClientID != nil && *m.ClientID == "m-1" {
				count++
			}
		}
		if count != 1 || len(shown.Messages) != 3 {
			t.Errorf("%s: %d messages, %d with client_id m-1; want 3 and 1\n%s", sr.what, len(shown.Messages), count, sr.body)
		}

		big := map[string]string{"text": strings.Repeat("x", 300<<10), "client_id": "m-big"}
		apiProblem(t, f.call(t, http.MethodPost, path, big), http.StatusRequestEntityTooLarge)

		p := apiProblem(t, f.call(t, http.MethodPost, path, map[string]string{"text": "  "}), http.StatusUnprocessableEntity)
		if !apiHasFieldError(p, "text") {
			t.Errorf("empty text: errors %+v; want one for text", p.Errors)
		}

		owner2, b2 := mustBrand(t, db, "Other", "owner@other.test")
		key2, _ := apiMustSkillsAndKey(t, db, owner2, b2)
		r = apiCall(t, f.ts, http.MethodPost, "/api/v1/escalations", key2, apiEscalationBody("chat-o"))
		apiExpect(t, r, http.StatusCreated)
		otherID := apiField[string](t, r, apiObject(t, r), "id")
		apiProblem(t, f.call(t, http.MethodPost, "/api/v1/conversations/"+otherID+"/messages", map[string]string{"text": "hi"}), http.StatusNotFound)
		msgs, err := db.Store.Messages(context.Background(), otherID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 {
			t.Errorf("other brand's conversation has %d messages; want its transcript's 2", len(msgs))
		}

		// Once the conversation is closed a new message is refused, but a
		// resend still answers the message it repeats (a bot retrying
		// after a lost answer), on both databases.
		apiExpect(t, f.call(t, http.MethodPost, "/api/v1/conversations/"+id+"/cancel", nil), http.StatusOK)
		apiProblem(t, f.call(t, http.MethodPost, path, map[string]string{"text": "still there?", "client_id": "m-2"}), http.StatusConflict)
		r = f.call(t, http.MethodPost, path, map[string]string{"text": "are you there?", "client_id": "m-1"})
		apiExpect(t, r, http.StatusOK)
		if seq := apiField[int](t, r, apiObject(t, r), "seq"); seq != 3 {
			t.Errorf("%s resend after the close: seq %d; want the stored 3", r.what, seq)
		}
	})
}

func TestAPIEscalationConcurrentSameExternalID(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)
		const n = 12
		body, _ := json.Marshal(apiEscalationBody("chat-race"))
		results := make([]apiResp, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = apiSend(f.ts, http.MethodPost, "/api/v1/escalations", f.key, "application/json", body)
			})
		}
		close(start)
		wg.Wait()
		created, ok := 0, 0
		ids := map[string]bool{}
		for i, r := range results {
			if errs[i] != nil {
				t.Errorf("call %d: %v", i, errs[i])
				continue
			}
			switch r.status {
			case http.StatusCreated:
				created++
			case http.StatusOK:
				ok++
			default:
				t.Errorf("%v\nwant 201 or 200", r)
				continue
			}
			var out struct{ ID string }
			apiDecode(t, r, &out)
			ids[out.ID] = true
		}
		if created != 1 || ok != n-1 || len(ids) != 1 {
			t.Errorf("%d parallel escalations: %d × 201, %d × 200, ids %v; want 1, %d and one id", n, created, ok, ids, n-1)
		}
		var rows int64
		if err := db.Store.DB.Model(&models.Conversation{}).Where("brand_id = ? AND external_id = ?", f.brand.ID, "chat-race").Count(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if rows != 1 {
			t.Errorf("%d conversation rows for one external_id; want 1", rows)
		}
	})
}

func TestAPILogsNoCustomerContent(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db)
		const (
			line    = "zebra-transcript-7731 my card number is private"
			summary = "quokka-summary-4410 about a refund"
			message = "walrus-message-9902 still waiting"
			email   = "ada.lovelace.private@example.com"
		)
		body := apiWith(apiEscalationBody("chat-log"), "summary", summary,
			"customer", map[string]any{"name": "Ada", "email": email},
			"transcript", []map[string]any{{"role": "customer", "text": line}})
		r := f.escalate(t, body)
		apiExpect(t, r, http.StatusCreated)
		id := apiField[string](t, r, apiObject(t, r), "id")
		apiExpect(t, f.call(t, http.MethodPost, "/api/v1/conversations/"+id+"/messages", map[string]string{"text": message}), http.StatusCreated)
		f.show(t, id)
		// Refused requests carry content too.
		apiProblem(t, f.escalate(t, apiWith(body, "external_id", "chat-log-2", "language", "english!!")), http.StatusUnprocessableEntity)
		apiProblem(t, apiRaw(t, f.ts, http.MethodPost, "/api/v1/escalations", f.key, "application/json", []byte(`{"summary":"`+summary)), http.StatusBadRequest)

		log := f.ts.log.String()
		if !strings.Contains(log, "/api/v1/escalations") {
			t.Fatalf("the captured log has no request lines; the check would prove nothing:\n%s", log)
		}
		for _, s := range []string{line, summary, message, email} {
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, s) {
					t.Errorf("the server log contains %q:\n%s", s, l)
				}
			}
		}
	})
}

// TestAPIEscalationShedWhenConnectionsQueue: on PostgreSQL, once requests
// have queued for the pool's connections longer than ShedWriteWait, a new
// escalation is refused with 503, Retry-After and a problem saying why,
// nothing stored; once the queue is gone, the retry goes through.
func TestAPIEscalationShedWhenConnectionsQueue(t *testing.T) {
	t.Parallel()
	db := modeltest.Postgres(t)
	f := apiSetup(t, db, func(c *Config) { c.ShedWriteWait = 20 * time.Millisecond })
	sqlDB, err := db.Store.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Every connection of the pool held, and four requests queued for one.
	var held []*sql.Conn
	for range db.Store.PoolStats().MaxOpenConnections {
		c, err := sqlDB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The window starts here, once the connections are held: opening them
	// may take a while on a busy machine, and a window over a second old
	// says nothing (PoolWait).
	db.Store.PoolWait()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := db.Store.Brand(ctx, f.brand.ID); err != nil {
				t.Error(err)
			}
		})
	}
	// The pool counts a wait once it is served: the four have queued
	// long before this sleep ends.
	time.Sleep(350 * time.Millisecond)
	for _, c := range held {
		c.Close()
	}
	wg.Wait()

	expectShed(t, f, db, "connections")
	// A quarter second later nobody queues: the retry is taken in.
	time.Sleep(300 * time.Millisecond)
	apiExpect(t, f.escalate(t, apiEscalationBody("refused")), http.StatusCreated)
}

// expectShed posts an escalation ("refused") and checks it is refused with
// 503, Retry-After and a problem that says the server is overloaded, why
// (its detail holds why) and which setting, and that nothing was stored.
func expectShed(t *testing.T, f *apiFixture, db *modeltest.DB, why string) {
	t.Helper()
	r := f.escalate(t, apiEscalationBody("refused"))
	p := apiProblem(t, r, http.StatusServiceUnavailable)
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Errorf("%s: Retry-After %q; want 1", r.what, ra)
	}
	if !strings.Contains(p.Detail, "overloaded") || !strings.Contains(p.Detail, why) || !strings.Contains(p.Detail, "HANDOFF_SHED_WRITE_WAIT") {
		t.Errorf("%s: detail %q; want it to say the server is overloaded, why (%s), and name the setting", r.what, p.Detail, why)
	}
	var n int64
	if err := db.Store.DB.Model(&models.Conversation{}).Where("brand_id = ?", f.brand.ID).Count(&n).Error; err != nil || n != 0 {
		t.Fatalf("%d conversations, %v; want none stored for the refused escalation", n, err)
	}
}

// TestAPIEscalationShedWhenPeerNewsWaits: on PostgreSQL with several
// instances, while another instance's news has waited past ShedWriteWait
// to be delivered here, a new escalation is refused with 503 and a problem
// saying why, nothing stored; once it is delivered, the retry is taken in.
func TestAPIEscalationShedWhenPeerNewsWaits(t *testing.T) {
	t.Parallel()
	db := modeltest.Postgres(t)
	f := apiSetup(t, db, func(c *Config) { c.ShedWriteWait = 20 * time.Millisecond })
	p := f.ts.srv.peers // its deliverer is not running: what arrives waits
	other := &peers{id: models.NewID()}
	ev, _ := json.Marshal(peerEvent{K: "c", C: "conversation-1"})
	p.enqueue(string(other.payload(nil, [][]byte{ev}, false)), time.Now().Add(-time.Second))
	if lag := p.backlog(); lag < time.Second {
		t.Fatalf("backlog %s; want the waiting payload's second", lag)
	}
	expectShed(t, f, db, "other instances")
	// Delivered: nothing waits, and the retry is taken in.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.deliver(ctx) }()
	for p.backlog() > 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	apiExpect(t, f.escalate(t, apiEscalationBody("refused")), http.StatusCreated)
}

// TestAPIEscalationShedWhenWritesQueue: while SQLite's writes queue past
// ShedWriteWait, a new escalation is refused with 503, Retry-After and a
// problem saying why, nothing stored; the one already taken in is served
// when the writer frees up, and the refused one goes through on retry.
// On PostgreSQL one open transaction queues nothing (the pool has
// connections to spare), so nothing is shed there; its pool's queue is
// TestAPIEscalationShedWhenConnectionsQueue's.
func TestAPIEscalationShedWhenWritesQueue(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := apiSetup(t, db, func(c *Config) { c.ShedWriteWait = 20 * time.Millisecond })
		shedCount := func() string {
			_, body := f.ts.client().get("/metrics")
			for _, line := range strings.Split(body, "\n") {
				if strings.HasPrefix(line, "handoff_escalations_shed_total ") {
					return strings.TrimPrefix(line, "handoff_escalations_shed_total ")
				}
			}
			t.Fatal("/metrics lacks handoff_escalations_shed_total")
			return ""
		}
		// A transaction keeps the writer busy (on SQLite, the one writer).
		inTx, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			held <- db.Store.DB.Transaction(func(tx *gorm.DB) error {
				close(inTx)
				<-release
				return nil
			})
		}()
		<-inTx
		first := make(chan apiResp, 1)
		go func() {
			b, _ := json.Marshal(apiEscalationBody("taken-in"))
			r, err := apiSend(f.ts, http.MethodPost, "/api/v1/escalations", f.key, "application/json", b)
			if err != nil {
				r.what, r.body = "POST taken-in", err.Error()
			}
			first <- r
		}()
		if db.Name == "sqlite" {
			// It waits for the writer; once it has waited past the limit,
			// the next is refused.
			for deadline := time.Now().Add(10 * time.Second); db.Store.WriteBacklog() <= 40*time.Millisecond; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no write queued behind the open transaction: backlog %v", db.Store.WriteBacklog())
				}
			}
			r := f.escalate(t, apiEscalationBody("refused"))
			p := apiProblem(t, r, http.StatusServiceUnavailable)
			if ra := r.header.Get("Retry-After"); ra != "1" {
				t.Errorf("%s: Retry-After %q; want 1", r.what, ra)
			}
			if !strings.Contains(p.Detail, "overloaded") || !strings.Contains(p.Detail, "HANDOFF_SHED_WRITE_WAIT") {
				t.Errorf("%s: detail %q; want it to say the server is overloaded and name the setting", r.what, p.Detail)
			}
			if got := shedCount(); got != "1" {
				t.Errorf("handoff_escalations_shed_total = %s; want 1", got)
			}
		} else {
			apiExpect(t, <-first, http.StatusCreated)
			apiExpect(t, f.escalate(t, apiEscalationBody("refused")), http.StatusCreated)
		}
		close(release)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		if db.Name == "sqlite" {
			apiExpect(t, <-first, http.StatusCreated)
		}
		r := f.escalate(t, apiEscalationBody("refused")) // the retry (on PostgreSQL, the same again)
		if db.Name == "sqlite" {
			apiExpect(t, r, http.StatusCreated)
		} else {
			apiExpect(t, r, http.StatusOK)
		}
		var n int64
		if err := db.Store.DB.Model(&models.Conversation{}).Where("brand_id = ?", f.brand.ID).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("%d conversations; want 2 (the refused one stored once, on its retry)", n)
		}
		if db.Name == "postgres" {
			if got := shedCount(); got != "0" {
				t.Errorf("handoff_escalations_shed_total on PostgreSQL = %s; want 0", got)
			}
		}
	})
}
