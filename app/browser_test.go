package app

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// TestBrowserSignupVettingAndPresence drives the pages in headless Chromium
// as three people do, each in a browser context of their own (so each has
// their own cookies): a brand signs up, sets its quality bars and makes an
// API key; an agent applies; the operator approves the application; the
// agent goes online.
func TestBrowserSignupVettingAndPresence(t *testing.T) {
	t.Parallel() // it mostly waits on Chromium, a process of its own
	chromium := chromiumPath(t)
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ts := newTestServer(t, db)
		br := newTestBrowser(t, chromium, ts.ts.URL)

		// (1) A brand signs up and lands on its dashboard, then opens its settings.
		brand := br.newTab("brand")
		brand.open("/signup")
		brand.fill("#name", "Globex Support")
		brand.fill("#email", "owner@globex.test")
		brand.fill("#password", testPassword)
		brand.submit("sign up", "main form button[type=submit]")
		m := regexp.MustCompile(`^/brand/([^/]+)$`).FindStringSubmatch(brand.path())
		if m == nil {
			brand.fatalf("after sign-up the brand is at %s; want /brand/ID", brand.path())
		}
		brandID := m[1]
		if got := brand.text(".flash"); !strings.Contains(got, "Welcome to Handoff, Globex Support") {
			brand.fatalf("flash after sign-up = %q; want the welcome", got)
		}
		if got := brand.text("main"); !strings.Contains(got, "Getting started") {
			brand.fatalf("the dashboard lacks the getting-started checklist:\n%s", got)
		}
		brand.open("/brand/" + brandID + "/settings")

		// It sets its quality bars and the offer timeout.
		brand.fill("#min_rating", "4.2")
		brand.fill("#min_qa_score", "80")
		if !brand.checked("input[name=require_certification]") {
			brand.click("input[name=require_certification]")
		}
		brand.fill("#offer_timeout_seconds", "30")
		brand.submit("save settings", "main form button[type=submit]")
		if got := brand.text(".flash"); got != "Settings saved." {
			brand.fatalf("flash after saving = %q; want %q", got, "Settings saved.")
		}
		for sel, want := range map[string]string{"#min_rating": "4.2", "#min_qa_score": "80", "#offer_timeout_seconds": "30"} {
			if got := brand.value(sel); got != want {
				brand.fatalf("after saving, %s shows %q; want %q", sel, got, want)
			}
		}
		if !brand.checked("input[name=require_certification]") {
			brand.fatalf("after saving, Require certification is not checked")
		}
		b, err := db.Store.Brand(ctx, brandID)
		if err != nil {
			t.Fatalf("Brand: %v", err)
		}
		if b.MinRating != 4.2 || b.MinQAScore != 80 || !b.RequireCertification || b.OfferTimeoutSeconds != 30 {
			t.Fatalf("stored settings: min rating %v, min QA %v, certification %v, offer timeout %d; want 4.2, 80, true, 30",
				b.MinRating, b.MinQAScore, b.RequireCertification, b.OfferTimeoutSeconds)
		}

		// (2) It makes an API key for its bot; the key is shown once.
		brand.submit("open API keys", `header nav a[href="/brand/`+brandID+`/keys"]`)
		brand.fill("#name", "Bot")
		brand.submitStatus("create key", "main form button[type=submit]", 201)
		key := brand.value("#new-key")
		if !strings.HasPrefix(key, "hk_") {
			brand.fatalf("#new-key = %q; want a key starting hk_", key)
		}
		if got := brand.text(".new-key header"); !strings.Contains(got, "Bot") {
			brand.fatalf("new key header = %q; want the key's name", got)
		}
		if kb, _, err := db.Store.BrandByAPIKey(ctx, key); err != nil || kb.ID != brandID {
			t.Fatalf("BrandByAPIKey(shown key) = %v, %v; want brand %s", kb, err, brandID)
		}

		// Its live queue reconnects by itself when its socket drops, after
		// a spread delay (Handoff.retryIn), counted here.
		brand.open("/brand/" + brandID + "/queue")
		brand.waitFor("the live queue connected", `document.querySelector("#queue-socket").textContent === "live"`)
		brand.waitFor("a count of reconnect delays", `(function (f) {
			window.retries = 0;
			Handoff.retryIn = function (b) { window.retries++; return f(b); };
			return true;
		})(Handoff.retryIn)`)
		ts.srv.hub.Close(brandTopic(brandID))
		brand.waitFor("the live queue back after a spread delay",
			`window.retries >= 1 && document.querySelector("#queue-socket").textContent === "live"`)

		// (3) An agent applies, in a browser of their own.
		agent := br.newTab("agent")
		agent.open("/apply")
		agent.fill("#display_name", "Sam Rivera")
		agent.fill("#email", "sam@agents.test")
		agent.fill("#password", testPassword)
		agent.fill("#languages", "en")
		agent.fill("input[name=skill_1]", "billing")
		agent.selectOption("select[name=level_1]", "4")
		agent.fill("#bio", "Six years of billing support for SaaS brands.")
		agent.submit("apply", "main form button[type=submit]")
		if agent.path() != "/agent" {
			agent.fatalf("after applying the agent is at %s; want /agent", agent.path())
		}
		if got := agent.text("#application"); !strings.Contains(got, "Pending review") {
			agent.fatalf("application panel = %q; want Pending review", got)
		}
		const goOnline = "button[name=presence][value=online]"
		if !agent.disabled(goOnline) {
			agent.fatalf("Go online is enabled before approval")
		}

		// (4) The operator signs in, finds the application and approves it.
		mustOperator(t, db, "ops@handoff.test")
		op := br.newTab("operator")
		op.open("/login")
		op.fill("#email", "ops@handoff.test")
		op.fill("#password", testPassword)
		op.submit("sign in", "main form button[type=submit]")
		if op.path() != "/admin" {
			op.fatalf("after sign-in the operator is at %s; want /admin", op.path())
		}
		if got := op.text("main"); !strings.Contains(got, "Sam Rivera") || !strings.Contains(got, "sam@agents.test") {
			op.fatalf("the queue does not list the applicant:\n%s", got)
		}
		a := browserPendingAgent(t, db, "sam@agents.test")
		op.submit("open the review", `main a[role=button][href="/admin/agents/`+a.ID+`"]`)
		if got := op.text("#agent-status"); got != "pending" {
			op.fatalf("status on the review page = %q; want pending", got)
		}
		op.submit("approve", `form[action="/admin/agents/`+a.ID+`/approve"] button[type=submit]`)
		if op.path() != "/admin" {
			op.fatalf("after approving the operator is at %s; want /admin", op.path())
		}
		if got := op.text(".flash"); !strings.Contains(got, "Application approved") {
			op.fatalf("flash after approving = %q; want Application approved", got)
		}
		if got := op.text("main"); strings.Contains(got, "sam@agents.test") {
			op.fatalf("the approved applicant is still in the queue:\n%s", got)
		}

		// (5) The agent reloads, sees the approval and goes online.
		agent.open("/agent")
		if got := agent.text("#application"); !strings.Contains(got, "Approved") {
			agent.fatalf("application panel after approval = %q; want Approved", got)
		}
		// Once approved, the live console replaces the plain form.
		const consoleOnline = "#live-console button[data-presence=online]"
		if agent.disabled(consoleOnline) {
			agent.fatalf("the console's Online button is disabled after approval")
		}
		agent.waitFor("the console connects", `document.querySelector("#socket-state").dataset.state === "open"`)
		agent.click(consoleOnline)
		for deadline := time.Now().Add(30 * time.Second); agent.text("#presence-state") != "online"; {
			if time.Now().After(deadline) {
				agent.fatalf("presence = %q; want online", agent.text("#presence-state"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		stored, err := db.Store.Agent(ctx, a.ID)
		if err != nil || stored.Status != models.AgentApproved || stored.Presence != "online" {
			t.Fatalf("stored agent = %+v, %v; want approved and online", stored, err)
		}

		br.checkConsole()
	})
}

// browserPendingAgent finds the pending application of email.
func browserPendingAgent(t *testing.T, db *modeltest.DB, email string) *models.Agent {
	t.Helper()
	agents, err := db.Store.Agents(context.Background(), models.AgentPending, 100)
	if err != nil {
		t.Fatalf("Agents: %v", err)
	}
	for i := range agents {
		if agents[i].User != nil && agents[i].User.Email == email {
			return &agents[i]
		}
	}
	t.Fatalf("no pending application from %s", email)
	return nil
}
