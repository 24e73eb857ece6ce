package app

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// TestFormBrandFlow drives a brand's first day through the forms: sign up,
// settings, a skill, an API key, and a teammate's invitation.
func TestFormBrandFlow(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ts := newTestServer(t, db)
		mustOperator(t, db, "op@handoff.test")
		op := ts.client()
		op.login("op@handoff.test", testPassword)

		// Sign up → settings.
		c := ts.client()
		res, body := c.get("/signup")
		formExpect(t, "GET /signup", res, body, http.StatusOK)
		res, body = c.post("/signup", formValues("name", "Delta Care", "email", "Owner@Delta.test", "password", testPassword))
		loc := formRedirect(t, "POST /signup", res, body)
		m := regexp.MustCompile(`^/brand/([0-9a-f-]{36})$`).FindStringSubmatch(loc)
		if m == nil {
			t.Fatalf("POST /signup → %q; want /brand/<id>, the dashboard", loc)
		}
		id, base := m[1], "/brand/"+m[1]
		res, body = c.get(loc)
		formExpect(t, "GET settings", res, body, http.StatusOK)
		if !strings.Contains(body, "Welcome to Handoff, Delta Care.") {
			t.Errorf("settings page after sign-up has no welcome\n%s", formExcerpt(body))
		}
		b := formBrand(t, db, id)
		if b.Name != "Delta Care" || b.Slug != "delta-care" {
			t.Errorf("brand = %q/%q; want Delta Care/delta-care", b.Name, b.Slug)
		}
		if mem, err := db.Store.Membership(ctx, id, formUserID(t, db, "owner@delta.test")); err != nil || mem.Role != models.RoleOwner {
			t.Errorf("signer-up membership = %+v, %v; want owner", mem, err)
		}

		// Save settings.
		res, body = c.post(base+"/settings", formValues("name", "Delta Care", "languages", "en, de", "time_zone", "Europe/Berlin",
			"pay_rate", "4.50", "currency", "USD", "offer_timeout_seconds", "30", "max_wait_seconds", "900",
			"min_rating", "4.2", "min_qa_score", "80", "require_certification", "on"))
		if loc := formRedirect(t, "POST settings", res, body); loc != base+"/settings" {
			t.Errorf("POST settings → %q; want %s/settings", loc, base)
		}
		res, body = c.get(base + "/settings")
		formExpect(t, "GET settings", res, body, http.StatusOK)
		if !strings.Contains(body, "Settings saved.") {
			t.Error("no 'Settings saved.' after saving")
		}
		for field, want := range map[string]string{"pay_rate": "4.50", "languages": "en, de", "offer_timeout_seconds": "30",
			"min_rating": "4.2", "min_qa_score": "80", "time_zone": "Europe/Berlin", "max_wait_seconds": "900"} {
			formKept(t, body, field, want)
		}
		if !strings.Contains(body, `name="require_certification" checked`) {
			t.Error("certification switch not ticked after saving")
		}
		b = formBrand(t, db, id)
		if b.PayRateMinor != 450 || b.Currency != "USD" || b.Languages != "en,de" || b.MinRating != 4.2 || b.MinQAScore != 80 ||
			!b.RequireCertification || b.OfferTimeoutSeconds != 30 || b.TimeZone != "Europe/Berlin" {
			t.Errorf("saved brand = %+v", b)
		}
		res, body = c.get(base)
		formExpect(t, "GET dashboard", res, body, http.StatusOK)
		for _, want := range []string{"4.50 USD", "30 s", "Minimum rating: 4.2 ★", "Minimum QA score: 80", "Certification: required",
			"serving en, de", "Europe/Berlin"} {
			if !strings.Contains(body, want) {
				t.Errorf("dashboard does not show %q\n%s", want, formExcerpt(body))
			}
		}
		res, body = op.get("/admin/audit")
		formExpect(t, "GET /admin/audit", res, body, http.StatusOK)
		if !strings.Contains(body, "<code>brand.settings_changed</code>") || !strings.Contains(body, id) {
			t.Errorf("audit log does not list brand.settings_changed for the brand\n%s", formExcerpt(body))
		}

		// Add a skill.
		res, body = c.post(base+"/skills", formValues("skill", "Billing & Refunds"))
		formRedirect(t, "POST skills", res, body)
		_, body = c.get(base + "/skills")
		if !strings.Contains(body, "Skill added.") || !strings.Contains(body, "<td>Billing &amp; Refunds</td>") ||
			!strings.Contains(body, "<code>billing-refunds</code>") {
			t.Errorf("skills page does not list the new skill\n%s", formExcerpt(body))
		}
		if skills, _ := db.Store.Skills(ctx, id); len(skills) != 1 || skills[0].Slug != "billing-refunds" {
			t.Errorf("skills = %+v; want billing-refunds", skills)
		}

		// Create an API key: shown once, then only its prefix.
		res, body = c.post(base+"/keys", formValues("name", "Production bot"))
		formExpect(t, "POST keys", res, body, http.StatusCreated)
		km := regexp.MustCompile(`id="new-key" readonly value="(hk_[A-Za-z0-9_-]{20,})"`).FindStringSubmatch(body)
		if km == nil {
			t.Fatalf("POST keys does not show the new key\n%s", formExcerpt(body))
		}
		key := km[1]
		kb, k, err := db.Store.BrandByAPIKey(ctx, key)
		if err != nil || kb.ID != id {
			t.Fatalf("BrandByAPIKey(new key) = %v, %v; want the brand", kb, err)
		}
		if !strings.HasPrefix(key, k.Prefix) {
			t.Errorf("key %q does not start with its stored prefix %q", key, k.Prefix)
		}
		res, body = c.get(base + "/keys")
		formExpect(t, "GET keys", res, body, http.StatusOK)
		if strings.Contains(body, key) || strings.Contains(body, key[len(k.Prefix):]) {
			t.Error("the keys page shows the key again")
		}
		if !strings.Contains(body, "<code>"+k.Prefix+"…</code>") || !strings.Contains(body, "Production bot") {
			t.Errorf("the keys page does not list the key by prefix %q\n%s", k.Prefix, formExcerpt(body))
		}
		res, body = c.post(base+"/keys/"+k.ID+"/revoke", nil)
		if loc := formRedirect(t, "POST revoke", res, body); loc != base+"/keys" {
			t.Errorf("POST revoke → %q", loc)
		}
		if _, _, err := db.Store.BrandByAPIKey(ctx, key); !errors.Is(err, models.ErrUnauthorized) {
			t.Errorf("BrandByAPIKey(revoked key) err = %v; want ErrUnauthorized", err)
		}
		_, body = c.get(base + "/keys")
		if !strings.Contains(body, `badge off">revoked<`) {
			t.Errorf("keys page does not show the key as revoked\n%s", formExcerpt(body))
		}
		// Revoking twice is harmless.
		res, body = c.post(base+"/keys/"+k.ID+"/revoke", nil)
		formRedirect(t, "POST revoke again", res, body)

		// Invite a teammate: with no SMTP the mail waits in the outbox.
		res, body = c.post(base+"/team/invitations", formValues("email", "Rae@Delta.test", "role", "reviewer"))
		formRedirect(t, "POST invitation", res, body)
		_, body = c.get(base + "/team")
		if !strings.Contains(body, "Invitation sent to rae@delta.test") {
			t.Errorf("team page after inviting has no notice\n%s", formExcerpt(body))
		}
		res, body = op.get("/admin/outbox")
		formExpect(t, "GET /admin/outbox", res, body, http.StatusOK)
		if !strings.Contains(body, "to rae@delta.test") || !strings.Contains(body, "Join Delta Care on Handoff") {
			t.Errorf("outbox does not hold the invitation\n%s", formExcerpt(body))
		}
		lm := regexp.MustCompile(regexp.QuoteMeta(ts.ts.URL) + `(/invite/[A-Za-z0-9._-]+)`).FindStringSubmatch(body)
		if lm == nil {
			t.Fatalf("outbox mail has no invitation link\n%s", formExcerpt(body))
		}
		link := lm[1]

		// The teammate follows the link.
		tm := ts.client()
		res, body = tm.get(link)
		formExpect(t, "GET invite link", res, body, http.StatusOK)
		if !strings.Contains(body, "Join Delta Care") || !strings.Contains(body, "<strong>reviewer</strong>") ||
			!strings.Contains(body, "<strong>rae@delta.test</strong>") {
			t.Errorf("invitation page does not describe the invitation\n%s", formExcerpt(body))
		}
		tampered := formTamper(link)
		res, body = tm.get(tampered)
		tenantNotFound(t, "GET tampered link", res, body, "Delta Care", "rae@delta.test")
		rows := formRows(t, db)
		res, body = tm.post(tampered, formValues("display_name", "Mallory", "password", testPassword))
		tenantNotFound(t, "POST tampered link", res, body, "Delta Care")
		formSameRows(t, db, rows)

		res, body = tm.post(link, formValues("display_name", "Rae Viewer", "password", testPassword))
		if loc := formRedirect(t, "POST invite", res, body); loc != base {
			t.Errorf("POST invite → %q; want %s", loc, base)
		}
		uid := formUserID(t, db, "rae@delta.test")
		if mem, err := db.Store.Membership(ctx, id, uid); err != nil || mem.Role != models.RoleReviewer {
			t.Fatalf("teammate membership = %+v, %v; want reviewer", mem, err)
		}
		res, body = tm.get(base)
		formExpect(t, "teammate GET dashboard", res, body, http.StatusOK)
		if !strings.Contains(body, "Welcome to Delta Care on Handoff.") {
			t.Error("teammate's first page has no welcome")
		}
		res, body = tm.get(base + "/settings")
		formExpect(t, "reviewer GET settings", res, body, http.StatusForbidden)
		_, body = c.get(base + "/team")
		if !strings.Contains(body, "<td>Rae Viewer</td><td>rae@delta.test</td><td>reviewer</td>") {
			t.Errorf("team page does not list the new reviewer\n%s", formExcerpt(body))
		}

		// The link works once.
		other := ts.client()
		res, body = other.get(link)
		formExpect(t, "GET used link", res, body, http.StatusOK)
		if !strings.Contains(body, "This invitation is accepted.") {
			t.Errorf("used link page = %s", formExcerpt(body))
		}
		res, body = other.post(link, formValues("display_name", "Again", "password", testPassword))
		formExpect(t, "POST used link", res, body, http.StatusConflict)
	})
}

// formTamper changes one character of a link's signature.
func formTamper(link string) string {
	i := strings.LastIndexByte(link, '.') + 1
	r := byte('A')
	if link[i] == 'A' {
		r = 'B'
	}
	return link[:i] + string(r) + link[i+1:]
}

// formUserID returns the id of the account with email.
func formUserID(t *testing.T, db *modeltest.DB, email string) string {
	t.Helper()
	var u models.User
	if err := db.Store.DB.Where("email = ?", email).Take(&u).Error; err != nil {
		t.Fatalf("user %s: %v", email, err)
	}
	return u.ID
}

// TestFormAgentFlow drives an agent's application through vetting:
// apply, approval, rejection with a reason, suspension.
func TestFormAgentFlow(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		mustOperator(t, db, "op@handoff.test")
		op := ts.client()
		op.login("op@handoff.test", testPassword)

		apply := func(c *testClient, name, email string) string {
			t.Helper()
			res, body := c.get("/apply")
			formExpect(t, "GET /apply", res, body, http.StatusOK)
			res, body = c.post("/apply", formValues("display_name", name, "email", email, "password", testPassword,
				"languages", "en, es", "skill_1", "Billing", "level_1", "4", "skill_2", "Refunds", "level_2", "3",
				"bio", "Five years of support.", "max_concurrent", "2"))
			if loc := formRedirect(t, "POST /apply", res, body); loc != "/agent" {
				t.Errorf("POST /apply → %q; want /agent", loc)
			}
			res, body = c.get("/agent")
			formExpect(t, "GET /agent", res, body, http.StatusOK)
			if !strings.Contains(body, "Pending review") || !strings.Contains(body, "Thanks for applying.") {
				t.Errorf("agent page after applying does not say pending\n%s", formExcerpt(body))
			}
			return formUserID(t, db, email)
		}
		agentOf := func(userID string) *models.Agent {
			t.Helper()
			a, err := db.Store.AgentByUser(context.Background(), userID)
			if err != nil {
				t.Fatalf("AgentByUser: %v", err)
			}
			return a
		}

		ana := ts.client()
		a := agentOf(apply(ana, "Ana Agent", "ana@agents.test"))
		if a.Status != models.AgentPending || a.MaxConcurrent != 2 || strings.Join(a.LanguageTags(), ",") != "en,es" || len(a.Skills) != 2 {
			t.Errorf("stored application = %+v", a)
		}
		_, body := op.get("/admin")
		if !strings.Contains(body, "Ana Agent") || !strings.Contains(body, "/admin/agents/"+a.ID) {
			t.Errorf("operator's queue does not list the application\n%s", formExcerpt(body))
		}
		res, body := op.post("/admin/agents/"+a.ID+"/approve", nil)
		if loc := formRedirect(t, "POST approve", res, body); loc != "/admin" {
			t.Errorf("POST approve → %q; want /admin", loc)
		}
		_, body = ana.get("/agent")
		if !strings.Contains(body, `<span class="badge ok">Approved</span>`) {
			t.Errorf("agent page after approval does not say Approved\n%s", formExcerpt(body))
		}
		res, body = op.post("/admin/agents/"+a.ID+"/approve", nil)
		formExpect(t, "POST approve again", res, body, http.StatusConflict)

		// A second applicant is rejected with a reason.
		bo := ts.client()
		bID := agentOf(apply(bo, "Bo Applicant", "bo@agents.test")).ID
		res, body = op.post("/admin/agents/"+bID+"/reject", formValues("reason", "Not enough support experience yet."))
		formRedirect(t, "POST reject", res, body)
		_, body = bo.get("/agent")
		if !strings.Contains(body, "Not approved") || !strings.Contains(body, "Reason: Not enough support experience yet.") {
			t.Errorf("rejected agent's page does not show the reason\n%s", formExcerpt(body))
		}
		res, body = bo.post("/agent/presence", formValues("presence", "online"))
		formExpect(t, "rejected POST presence", res, body, http.StatusForbidden)
		_, body = op.get("/admin/agents/" + bID)
		if !strings.Contains(body, "Reason: Not enough support experience yet.") {
			t.Errorf("operator's agent page does not show the reason\n%s", formExcerpt(body))
		}

		// Ana goes online; suspension signs her out at once.
		res, body = ana.post("/agent/presence", formValues("presence", "online"))
		formRedirect(t, "POST presence", res, body)
		res, body = op.post("/admin/agents/"+a.ID+"/suspend", formValues("reason", "Rude to customers."))
		if loc := formRedirect(t, "POST suspend", res, body); loc != "/admin/agents/"+a.ID {
			t.Errorf("POST suspend → %q", loc)
		}
		res, body = ana.get("/agent")
		if loc := formRedirect(t, "suspended GET /agent", res, body); loc != "/login?next=%2Fagent" {
			t.Errorf("suspended GET /agent → %q; want /login?next=%%2Fagent", loc)
		}
		res, body = ana.post("/agent/presence", formValues("presence", "online"))
		formExpect(t, "suspended POST presence", res, body, http.StatusUnauthorized)
		if got := formAgent(t, db, a.ID); got.Status != models.AgentSuspended || got.Presence != models.PresenceOffline {
			t.Errorf("suspended agent = %s/%s; want suspended/offline", got.Status, got.Presence)
		}
		res, body = ana.post("/login", url.Values{"email": {"ana@agents.test"}, "password": {testPassword}})
		formExpect(t, "suspended login", res, body, http.StatusUnauthorized)
		_, body = op.get("/admin/audit")
		for _, action := range []string{"agent.approved", "agent.rejected", "agent.suspended"} {
			if !strings.Contains(body, "<code>"+action+"</code>") {
				t.Errorf("audit log does not list %s", action)
			}
		}
	})
}
