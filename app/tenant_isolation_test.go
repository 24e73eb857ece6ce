package app

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// tenantNotFound checks that a response is the real not-found page: HTML,
// status 404, and none of the other tenant's data.
func tenantNotFound(t *testing.T, what string, res *http.Response, body string, secrets ...string) {
	t.Helper()
	formExpect(t, what, res, body, http.StatusNotFound)
	if !strings.Contains(body, "<!doctype html>") || !strings.Contains(body, "Page not found") {
		t.Errorf("%s: not the not-found page\n%s", what, formExcerpt(body))
	}
	formNoLeak(t, what, body, secrets...)
}

func TestTenantIsolationOtherBrandIsNotFound(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ts := newTestServer(t, db)
		_, a := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		ownerB, b := mustBrand(t, db, "Bravo Secrets", "owner@bravo.test")
		keyB, kB, err := db.Store.CreateAPIKey(ctx, ownerB.ID, b.ID, "Bravo production bot")
		if err != nil {
			t.Fatal(err)
		}
		skB, err := db.Store.AddSkill(ctx, ownerB.ID, b.ID, "Bravo refunds")
		if err != nil {
			t.Fatal(err)
		}
		invB, err := db.Store.CreateInvitation(ctx, ownerB.ID, b.ID, "newbie@bravo.test", models.RoleReviewer)
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{b.Name, b.Slug, "bravo", ownerB.Email, kB.Prefix, "newbie@bravo.test"}

		c := ts.client()
		c.login("owner@alpha.test", testPassword)
		for _, p := range []string{"", "/settings", "/keys", "/skills", "/team"} {
			res, body := c.get("/brand/" + b.ID + p)
			tenantNotFound(t, "GET /brand/B"+p, res, body, secrets...)
		}

		before := formBrand(t, db, b.ID)
		rows := formRows(t, db)
		posts := []struct {
			path string
			form url.Values
		}{
			{"/settings", formValues("name", "Hijacked", "languages", "en", "time_zone", "UTC", "pay_rate", "9.99",
				"currency", "USD", "offer_timeout_seconds", "20", "max_wait_seconds", "900", "min_rating", "0", "min_qa_score", "0")},
			{"/keys", formValues("name", "Stolen key")},
			{"/skills", formValues("skill", "Planted")},
			{"/team/invitations", formValues("email", "spy@alpha.test", "role", "owner")},
			{"/keys/" + kB.ID + "/revoke", nil},
			{"/skills/" + skB.ID + "/delete", nil},
			{"/team/invitations/" + invB.ID + "/revoke", nil},
		}
		for _, p := range posts {
			res, body := c.post("/brand/"+b.ID+p.path, p.form)
			tenantNotFound(t, "POST /brand/B"+p.path, res, body, secrets...)
		}

		// B's objects through A's own URLs.
		for _, p := range []string{
			"/keys/" + kB.ID + "/revoke",
			"/skills/" + skB.ID + "/delete",
			"/team/invitations/" + invB.ID + "/revoke",
		} {
			res, body := c.post("/brand/"+a.ID+p, nil)
			tenantNotFound(t, "POST /brand/A"+p+" (B's id)", res, body, secrets...)
		}
		formSameRows(t, db, rows)
		if after := formBrand(t, db, b.ID); !reflect.DeepEqual(before, after) {
			t.Errorf("brand B changed:\nbefore %+v\nafter  %+v", before, after)
		}
		if got, _, err := db.Store.BrandByAPIKey(ctx, keyB); err != nil || got.ID != b.ID {
			t.Errorf("B's key after A tried to revoke it: BrandByAPIKey = %v, %v; want brand B, still live", got, err)
		}
		if skills, _ := db.Store.Skills(ctx, b.ID); len(skills) != 1 || skills[0].ID != skB.ID {
			t.Errorf("B's skills = %+v; want B's one skill untouched", skills)
		}
		if inv, err := db.Store.Invitation(ctx, invB.ID); err != nil || inv.State(db.Store.Now()) != "pending" {
			t.Errorf("B's invitation after A tried to withdraw it: %+v, %v; want pending", inv, err)
		}

		// Garbage ids are 404 without touching the database's types.
		for _, p := range []string{
			"/brand/not-a-uuid", "/brand/not-a-uuid/settings", "/brand/" + a.ID + "x",
			"/brand/00000000-0000-0000-0000-000000000000",
		} {
			res, body := c.get(p)
			tenantNotFound(t, "GET "+p, res, body)
		}
		for _, p := range []string{
			"/brand/" + a.ID + "/keys/not-a-uuid/revoke",
			"/brand/" + a.ID + "/skills/1/delete",
			"/brand/" + a.ID + "/team/invitations/' OR 1=1 --/revoke",
			"/brand/not-a-uuid/keys",
		} {
			res, body := c.post(strings.ReplaceAll(p, " ", "%20"), nil)
			tenantNotFound(t, "POST "+p, res, body)
		}
		// A still sees its own pages.
		if res, body := c.get("/brand/" + a.ID); res.StatusCode != http.StatusOK || !strings.Contains(body, a.Name) {
			t.Errorf("GET own dashboard = %d; want 200 with %q", res.StatusCode, a.Name)
		}
	})
}

func TestTenantReviewerSeesDashboardAndTeamOnly(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		owner, a := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		formReviewer(t, db, owner.ID, a.ID, "rita@alpha.test")
		c := ts.client()
		c.login("rita@alpha.test", testPassword)

		for _, p := range []string{"", "/team"} {
			res, body := c.get("/brand/" + a.ID + p)
			formExpect(t, "reviewer GET /brand/A"+p, res, body, http.StatusOK)
			if !strings.Contains(body, a.Name) {
				t.Errorf("reviewer GET /brand/A%s does not show the brand", p)
			}
			if strings.Contains(body, "/settings\"") || strings.Contains(body, "Send invitation") {
				t.Errorf("reviewer GET /brand/A%s offers owner-only links or forms", p)
			}
		}
		for _, p := range []string{"/settings", "/keys", "/skills"} {
			res, body := c.get("/brand/" + a.ID + p)
			formExpect(t, "reviewer GET /brand/A"+p, res, body, http.StatusForbidden)
		}
		before := formBrand(t, db, a.ID)
		rows := formRows(t, db)
		for _, p := range []struct {
			path string
			form url.Values
		}{
			{"/settings", formValues("name", "Renamed by reviewer", "languages", "en", "time_zone", "UTC", "pay_rate", "1.00",
				"currency", "USD", "offer_timeout_seconds", "20", "max_wait_seconds", "900")},
			{"/keys", formValues("name", "Reviewer key")},
			{"/skills", formValues("skill", "Reviewer skill")},
			{"/team/invitations", formValues("email", "friend@alpha.test", "role", "owner")},
		} {
			res, body := c.post("/brand/"+a.ID+p.path, p.form)
			formExpect(t, "reviewer POST /brand/A"+p.path, res, body, http.StatusForbidden)
		}
		formSameRows(t, db, rows)
		if after := formBrand(t, db, a.ID); !reflect.DeepEqual(before, after) {
			t.Errorf("a reviewer changed the brand:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}

func TestTenantAccountKindsAndVisitors(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, a := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		mustAgent(t, db, "ada@agents.test", true)
		pending := mustAgent(t, db, "pete@agents.test", false)

		agent := ts.client()
		agent.login("ada@agents.test", testPassword)
		for _, p := range []string{"/brand/" + a.ID, "/brand/" + a.ID + "/settings", "/brand/" + a.ID + "/team", "/brand",
			"/admin", "/admin/agents", "/admin/agents/" + pending.ID, "/admin/audit", "/admin/outbox"} {
			res, body := agent.get(p)
			formExpect(t, "agent GET "+p, res, body, http.StatusForbidden)
			formNoLeak(t, "agent GET "+p, body, a.Name, a.Slug, "pete@agents.test")
		}
		res, body := agent.post("/admin/agents/"+pending.ID+"/approve", nil)
		formExpect(t, "agent POST approve", res, body, http.StatusForbidden)
		res, body = agent.post("/brand/"+a.ID+"/keys", formValues("name", "agent key"))
		formExpect(t, "agent POST /brand/A/keys", res, body, http.StatusForbidden)

		owner := ts.client()
		owner.login("owner@alpha.test", testPassword)
		for _, p := range []string{"/admin", "/admin/agents", "/admin/audit", "/admin/outbox", "/agent"} {
			res, body := owner.get(p)
			formExpect(t, "owner GET "+p, res, body, http.StatusForbidden)
		}
		res, body = owner.post("/admin/agents/"+pending.ID+"/approve", nil)
		formExpect(t, "owner POST approve", res, body, http.StatusForbidden)
		res, body = owner.post("/agent/presence", formValues("presence", "online"))
		formExpect(t, "owner POST /agent/presence", res, body, http.StatusForbidden)
		if got := formAgent(t, db, pending.ID); got.Status != models.AgentPending {
			t.Errorf("pending agent's status = %q after others tried to approve; want pending", got.Status)
		}

		visitor := ts.client()
		for _, p := range []string{"/brand/" + a.ID, "/brand/" + a.ID + "/settings", "/brand", "/agent", "/admin", "/admin/agents?status=pending"} {
			res, body := visitor.get(p)
			loc := formRedirect(t, "visitor GET "+p, res, body)
			if want := "/login?next=" + url.QueryEscape(p); loc != want {
				t.Errorf("visitor GET %s → %q; want %q", p, loc, want)
			}
		}
		for _, p := range []string{"/brand/" + a.ID + "/settings", "/brand/" + a.ID + "/keys", "/brand/" + a.ID + "/team/invitations",
			"/agent/presence", "/admin/agents/" + pending.ID + "/approve"} {
			res, body := visitor.post(p, formValues("name", "x", "presence", "online", "email", "v@x.test", "role", "owner"))
			formExpect(t, "visitor POST "+p, res, body, http.StatusUnauthorized)
			formNoLeak(t, "visitor POST "+p, body, a.Name)
		}
		if got := formAgent(t, db, pending.ID); got.Status != models.AgentPending || got.Presence != models.PresenceOffline {
			t.Errorf("pending agent = %s/%s; want pending/offline", got.Status, got.Presence)
		}
		// After signing in, the visitor lands on the page they asked for.
		res, body = visitor.get("/brand/" + a.ID + "/team")
		loc := formRedirect(t, "visitor GET team", res, body)
		res, body = visitor.get(loc)
		formExpect(t, "GET "+loc, res, body, http.StatusOK)
		next, _ := url.ParseQuery(strings.TrimPrefix(loc, "/login?"))
		res, body = visitor.post("/login", formValues("email", "owner@alpha.test", "password", testPassword, "next", next.Get("next")))
		if got := formRedirect(t, "POST /login with next", res, body); got != "/brand/"+a.ID+"/team" {
			t.Errorf("login with next → %q; want the team page", got)
		}
		// An off-site next is ignored.
		other := ts.client()
		res, body = other.post("/login", formValues("email", "owner@alpha.test", "password", testPassword, "next", "//evil.test/x"))
		if got := formRedirect(t, "POST /login with off-site next", res, body); got != "/brand/"+a.ID {
			t.Errorf("login with off-site next → %q; want the brand's dashboard", got)
		}
	})
}

func TestTenantAgentPresence(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		pending := mustAgent(t, db, "pete@agents.test", false)
		approved := mustAgent(t, db, "ada@agents.test", true)

		pc := ts.client()
		pc.login("pete@agents.test", testPassword)
		res, body := pc.post("/agent/presence", formValues("presence", "online"))
		formExpect(t, "pending POST presence=online", res, body, http.StatusForbidden)
		if !strings.Contains(body, "You can go online once an operator has approved your application.") {
			t.Errorf("pending agent's 403 page does not say why\n%s", formExcerpt(body))
		}
		if got := formAgent(t, db, pending.ID); got.Presence != models.PresenceOffline {
			t.Errorf("pending agent's presence = %q; want offline", got.Presence)
		}
		res, body = pc.post("/agent/presence", formValues("presence", "away"))
		formExpect(t, "pending POST presence=away", res, body, http.StatusForbidden)
		if got := formAgent(t, db, pending.ID); got.Presence != models.PresenceOffline {
			t.Errorf("pending agent's presence = %q; want offline", got.Presence)
		}

		ac := ts.client()
		ac.login("ada@agents.test", testPassword)
		res, body = ac.post("/agent/presence", formValues("presence", "online"))
		if loc := formRedirect(t, "approved POST presence=online", res, body); loc != "/agent" {
			t.Errorf("approved POST presence=online → %q; want /agent", loc)
		}
		got := formAgent(t, db, approved.ID)
		if got.Presence != models.PresenceOnline || got.LastSeenAt == nil {
			t.Errorf("approved agent = %q, last seen %v; want online with a last-seen time", got.Presence, got.LastSeenAt)
		}
		_, body = ac.get("/agent")
		if !strings.Contains(body, `id="presence">online<`) {
			t.Errorf("agent page does not show online\n%s", formExcerpt(body))
		}
		for _, bad := range []string{"busy", "", "ONLINE", "online "} {
			res, body = ac.post("/agent/presence", formValues("presence", bad))
			formExpect(t, "POST presence="+bad, res, body, http.StatusUnprocessableEntity)
			if !strings.Contains(body, "Choose online, away or offline.") {
				t.Errorf("POST presence=%q: no message\n%s", bad, formExcerpt(body))
			}
		}
		if got := formAgent(t, db, approved.ID); got.Presence != models.PresenceOnline {
			t.Errorf("presence after invalid posts = %q; want still online", got.Presence)
		}
		// Another agent's id in the form changes nothing: presence is the caller's.
		res, body = ac.post("/agent/presence", formValues("presence", "offline", "agent", pending.ID, "agent_id", pending.ID))
		formRedirect(t, "POST presence=offline", res, body)
		if got := formAgent(t, db, approved.ID); got.Presence != models.PresenceOffline {
			t.Errorf("presence = %q; want offline", got.Presence)
		}
	})
}

// TestTenantLoginNextStaysOnSite checks that the post-login redirect never
// leaves the site. Browsers drop tabs and newlines from a Location and read
// "\" as "/", so "/\t/evil.test" would be "//evil.test": another host.
func TestTenantLoginNextStaysOnSite(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, a := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		home := "/brand/" + a.ID
		for _, next := range []string{"//evil.test/x", "/\\evil.test", "https://evil.test/", "/\t/evil.test", "/\n/evil.test",
			"/\r/evil.test", "\t//evil.test", "/\\\t/evil.test", "/\x00/evil.test", "evil.test"} {
			res := tenantRawPost(t, ts, "/login", formValues("email", "owner@alpha.test", "password", testPassword, "next", next))
			if got := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || got != home {
				t.Errorf("login with next=%q = %d → %q; want 303 → %q", next, res.StatusCode, got, home)
			}
			// The sign-in page does not carry it into its form either.
			_, body := ts.client().get("/login?next=" + url.QueryEscape(next))
			if m := regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(body); m == nil || m[1] != "" {
				t.Errorf("GET /login?next=%q keeps next in the form: %v", next, m)
			}
		}
		for _, next := range []string{"/brand/" + a.ID + "/team", "/brand/" + a.ID + "/keys?x=1"} {
			c := ts.client()
			res, body := c.post("/login", formValues("email", "owner@alpha.test", "password", testPassword, "next", next))
			if got := formRedirect(t, "POST /login next="+next, res, body); got != next {
				t.Errorf("login with next=%q → %q; want it kept", next, got)
			}
		}
	})
}

// tenantRawPost posts a form through the transport alone, so a Location the
// Go client would refuse to parse still reaches the test as the browser
// would see it.
func tenantRawPost(t *testing.T, ts *testServer, path string, form url.Values) *http.Response {
	t.Helper()
	c := ts.client()
	tok := c.csrf()
	form.Set(csrfField, tok)
	req, _ := http.NewRequest(http.MethodPost, ts.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	res.Body.Close()
	return res
}
