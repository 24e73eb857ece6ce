package app

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// Helpers for the tenant_* and form_* tests. Names start with "form" so
// they do not collide with helpers in other test files of the package.

// formControl returns the opening tag of the input, select or textarea
// whose id (or, failing that, name) is field, or "".
func formControl(body, field string) string {
	q := regexp.QuoteMeta(field)
	for _, attr := range []string{"id", "name"} {
		re := regexp.MustCompile(`<(?:input|select|textarea)\b[^>]*\s` + attr + `="` + q + `"[^>]*>`)
		if m := re.FindString(body); m != "" {
			return m
		}
	}
	return ""
}

// formFieldError checks that the page shows a message next to field
// (class="field-error", id="<field>-error") and marks its control with
// aria-invalid="true", and returns the message.
func formFieldError(t *testing.T, body, field string) string {
	t.Helper()
	re := regexp.MustCompile(`<small class="field-error" id="` + regexp.QuoteMeta(field) + `-error">([^<]+)</small>`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Errorf("no field-error message for %q on the page\n%s", field, formExcerpt(body))
		return ""
	}
	ctl := formControl(body, field)
	if ctl == "" {
		t.Errorf("no control for %q on the page", field)
		return m[1]
	}
	if !strings.Contains(ctl, `aria-invalid="true"`) {
		t.Errorf("control of %q = %s; want aria-invalid=\"true\"", field, ctl)
	}
	return m[1]
}

// formNoFieldError checks that field is not marked invalid.
func formNoFieldError(t *testing.T, body, field string) {
	t.Helper()
	if strings.Contains(body, `id="`+field+`-error"`) {
		t.Errorf("field %q is marked invalid; want it accepted\n%s", field, formExcerpt(body))
	}
}

// formKept checks that the re-rendered control of field shows value, as
// typed (escaped for HTML).
func formKept(t *testing.T, body, field, value string) {
	t.Helper()
	esc := template.HTMLEscapeString(value)
	ctl := formControl(body, field)
	switch {
	case ctl == "":
		t.Errorf("no control for %q on the page", field)
	case strings.HasPrefix(ctl, "<textarea"):
		if !strings.Contains(body, ctl+esc+"</textarea>") {
			t.Errorf("textarea %q does not show the typed value %.40q…", field, value)
		}
	default:
		if !strings.Contains(ctl, ` value="`+esc+`"`) {
			t.Errorf("control of %q = %.200s; want value=%.40q…", field, ctl, esc)
		}
	}
}

// formNoPassword checks that no password input carries a value and that the
// password typed is nowhere on the page.
func formNoPassword(t *testing.T, body, password string) {
	t.Helper()
	if password != "" && strings.Contains(body, password) {
		t.Errorf("the page shows the password %q that was typed", password)
	}
	for _, tag := range regexp.MustCompile(`<input\b[^>]*type="password"[^>]*>`).FindAllString(body, -1) {
		if strings.Contains(tag, "value=") {
			t.Errorf("password input has a value: %s", tag)
		}
	}
}

// formExpect checks the status of a response and that it is an HTML page.
func formExpect(t *testing.T, what string, res *http.Response, body string, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("%s = %d; want %d\n%s", what, res.StatusCode, status, formExcerpt(body))
	}
	if status != http.StatusSeeOther && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("%s Content-Type = %q; want text/html", what, res.Header.Get("Content-Type"))
	}
}

// formRedirect checks a 303 and returns its Location.
func formRedirect(t *testing.T, what string, res *http.Response, body string) string {
	t.Helper()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s = %d; want 303\n%s", what, res.StatusCode, formExcerpt(body))
	}
	return res.Header.Get("Location")
}

// formNoLeak checks that a page carries none of the strings.
func formNoLeak(t *testing.T, what, body string, secrets ...string) {
	t.Helper()
	lower := strings.ToLower(body)
	for _, s := range secrets {
		if s != "" && strings.Contains(lower, strings.ToLower(s)) {
			t.Errorf("%s: the page contains %q", what, s)
		}
	}
}

// formExcerpt trims a page for failure messages: the main element if any.
func formExcerpt(body string) string {
	if i := strings.Index(body, `<main`); i >= 0 {
		body = body[i:]
	}
	if len(body) > 3000 {
		body = body[:3000] + "…"
	}
	return body
}

// formCountedTables are the tables the "nothing half-saved" checks count.
var formCountedTables = map[string]any{
	"users": &models.User{}, "sessions": &models.Session{}, "brands": &models.Brand{},
	"brand_members": &models.BrandMember{}, "brand_skills": &models.BrandSkill{}, "api_keys": &models.APIKey{},
	"invitations": &models.Invitation{}, "agents": &models.Agent{}, "agent_languages": &models.AgentLanguage{},
	"agent_skills": &models.AgentSkill{}, "audit_log": &models.AuditEntry{}, "mail_outbox": &models.Mail{},
}

// formRows counts the rows of every table a form could write.
func formRows(t *testing.T, db *modeltest.DB) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for name, m := range formCountedTables {
		var n int64
		if err := db.Store.DB.Model(m).Count(&n).Error; err != nil {
			t.Fatalf("count %s: %v", name, err)
		}
		out[name] = n
	}
	return out
}

// formSameRows checks that no table gained or lost rows since before.
func formSameRows(t *testing.T, db *modeltest.DB, before map[string]int64) {
	t.Helper()
	after := formRows(t, db)
	if !reflect.DeepEqual(before, after) {
		for k := range before {
			if before[k] != after[k] {
				t.Errorf("table %s has %d rows; want %d (nothing saved)", k, after[k], before[k])
			}
		}
	}
}

// formBrand re-reads a brand from the database.
func formBrand(t *testing.T, db *modeltest.DB, id string) *models.Brand {
	t.Helper()
	b, err := db.Store.Brand(context.Background(), id)
	if err != nil {
		t.Fatalf("Brand(%s): %v", id, err)
	}
	return b
}

// formAgent re-reads an agent from the database.
func formAgent(t *testing.T, db *modeltest.DB, id string) *models.Agent {
	t.Helper()
	a, err := db.Store.Agent(context.Background(), id)
	if err != nil {
		t.Fatalf("Agent(%s): %v", id, err)
	}
	return a
}

// formReviewer adds a reviewer to a brand through an accepted invitation.
func formReviewer(t *testing.T, db *modeltest.DB, ownerID, brandID, email string) *models.User {
	t.Helper()
	ctx := context.Background()
	inv, err := db.Store.CreateInvitation(ctx, ownerID, brandID, email, models.RoleReviewer)
	if err != nil {
		t.Fatalf("CreateInvitation: %v", err)
	}
	u, err := db.Store.AcceptInvitation(ctx, inv.ID, "Reviewer "+email, testPassword)
	if err != nil {
		t.Fatalf("AcceptInvitation: %v", err)
	}
	return u
}

// formValues builds url.Values from pairs.
func formValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// formWith returns a copy of base with the pairs set.
func formWith(base url.Values, kv ...string) url.Values {
	v := url.Values{}
	for k, vs := range base {
		v[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}
