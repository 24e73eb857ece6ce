package app

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// formCase is one bad submission of a form: the fields it sends, the field
// that must be marked invalid, and the typed values that must come back.
type formCase struct {
	name  string
	form  url.Values
	field string
	keep  []string // fields whose typed value must be shown again
}

func TestFormSignupRejectsBadInput(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		mustBrand(t, db, "Taken Co", "taken@brand.test")
		good := formValues("name", "Gamma Goods", "email", "owner@gamma.test", "password", "gamma password 1")
		cases := []formCase{
			{"NameEmpty", formWith(good, "name", "  "), "name", []string{"email"}},
			{"NameTooLong", formWith(good, "name", strings.Repeat("n", 101)), "name", []string{"name", "email"}},
			{"NameNoLetters", formWith(good, "name", "!!!"), "name", []string{"name", "email"}},
			{"EmailMalformed", formWith(good, "email", "owner at gamma"), "email", []string{"name", "email"}},
			{"EmailEmpty", formWith(good, "email", ""), "email", []string{"name"}},
			{"EmailTaken", formWith(good, "email", "taken@brand.test"), "email", []string{"name", "email"}},
			{"PasswordShort", formWith(good, "password", "short pw"), "password", []string{"name", "email"}},
			{"PasswordEmpty", formWith(good, "password", ""), "password", []string{"name", "email"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.client()
				rows := formRows(t, db)
				res, body := c.post("/signup", tc.form)
				formExpect(t, "POST /signup", res, body, http.StatusUnprocessableEntity)
				formFieldError(t, body, tc.field)
				for _, k := range tc.keep {
					formKept(t, body, k, tc.form.Get(k))
				}
				formNoPassword(t, body, tc.form.Get("password"))
				formSameRows(t, db, rows)
				if c.cookie(sessionCookie) != "" {
					t.Error("a failed sign-up signed the visitor in")
				}
			})
		}
		// Several bad fields are all reported at once.
		c := ts.client()
		res, body := c.post("/signup", formValues("name", "", "email", "nope", "password", "x"))
		formExpect(t, "POST /signup (all bad)", res, body, http.StatusUnprocessableEntity)
		for _, f := range []string{"name", "email", "password"} {
			formFieldError(t, body, f)
		}
	})
}

func TestFormApplyRejectsBadInput(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		mustAgent(t, db, "taken@agents.test", false)
		good := formValues("display_name", "Ana Agent", "email", "ana@agents.test", "password", "ana password 12",
			"languages", "en, es", "skill_1", "Billing", "level_1", "4", "bio", "Five years of support.", "max_concurrent", "2")
		noSkills := formWith(good)
		noSkills.Del("skill_1")
		noSkills.Del("level_1")
		cases := []formCase{
			{"DisplayNameEmpty", formWith(good, "display_name", ""), "display_name", []string{"email", "languages", "bio"}},
			{"DisplayNameTooLong", formWith(good, "display_name", strings.Repeat("d", 101)), "display_name", []string{"display_name"}},
			{"EmailMalformed", formWith(good, "email", "ana@"), "email", []string{"display_name", "email"}},
			{"EmailTaken", formWith(good, "email", "taken@agents.test"), "email", []string{"display_name", "email"}},
			{"PasswordShort", formWith(good, "password", "2short"), "password", []string{"display_name", "email"}},
			{"LanguageBad", formWith(good, "languages", "xx-!!"), "languages", []string{"languages", "display_name"}},
			{"LanguagesEmpty", formWith(good, "languages", " , "), "languages", []string{"display_name"}},
			{"NoSkills", noSkills, "skills", []string{"display_name", "bio"}},
			{"LevelOutOfRange", formWith(good, "level_1", "9"), "skills", []string{"display_name", "skill_1"}},
			{"LevelNotANumber", formWith(good, "level_1", "expert"), "skills", []string{"skill_1"}},
			{"SkillNoLetters", formWith(good, "skill_1", "!!!"), "skills", []string{"display_name"}},
			{"MaxConcurrentFour", formWith(good, "max_concurrent", "4"), "max_concurrent", []string{"display_name", "bio"}},
			{"MaxConcurrentAbc", formWith(good, "max_concurrent", "abc"), "max_concurrent", []string{"display_name", "bio"}},
			{"BioEmpty", formWith(good, "bio", ""), "bio", []string{"display_name"}},
			{"BioTooLong", formWith(good, "bio", strings.Repeat("b", 1001)), "bio", []string{"bio", "display_name"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.client()
				rows := formRows(t, db)
				res, body := c.post("/apply", tc.form)
				formExpect(t, "POST /apply", res, body, http.StatusUnprocessableEntity)
				if tc.field == "skills" {
					// The skill rows are a group: the message is tied to the
					// fieldset by aria-describedby.
					if !strings.Contains(body, `<small class="field-error" id="skills-error">`) ||
						!strings.Contains(body, `<fieldset aria-describedby="skills-error">`) {
						t.Errorf("no skills message tied to the skill rows\n%s", formExcerpt(body))
					}
				} else {
					formFieldError(t, body, tc.field)
				}
				for _, k := range tc.keep {
					formKept(t, body, k, tc.form.Get(k))
				}
				formNoPassword(t, body, tc.form.Get("password"))
				formSameRows(t, db, rows)
				if c.cookie(sessionCookie) != "" {
					t.Error("a failed application signed the visitor in")
				}
			})
		}
		// The crafted level is not shown as chosen; the skill keeps its name.
		c := ts.client()
		_, body := c.post("/apply", formWith(good, "level_1", "9"))
		if !strings.Contains(body, "must be 1 to 5") {
			t.Errorf("level 9: message does not name the range\n%s", formExcerpt(body))
		}
	})
}

func TestFormBrandSettingsRejectsBadInputAndSavesNothing(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		owner, b := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		c := ts.client()
		c.login(owner.Email, testPassword)
		// good differs from the saved brand in every field, so a half-save
		// of any field would show.
		good := formValues("name", "Alpha Renamed", "languages", "en, fr", "time_zone", "Europe/Berlin", "pay_rate", "7.25",
			"currency", "EUR", "offer_timeout_seconds", "45", "max_wait_seconds", "600", "min_rating", "4.5",
			"min_qa_score", "70", "require_certification", "on")
		cases := []formCase{
			{"NameEmpty", formWith(good, "name", ""), "name", []string{"languages", "pay_rate"}},
			{"NameTooLong", formWith(good, "name", strings.Repeat("n", 101)), "name", []string{"name"}},
			{"PayRateAbc", formWith(good, "pay_rate", "abc"), "pay_rate", []string{"pay_rate", "name"}},
			{"PayRateThreeDecimals", formWith(good, "pay_rate", "1.234"), "pay_rate", []string{"pay_rate", "name"}},
			{"PayRateNegative", formWith(good, "pay_rate", "-1.00"), "pay_rate", []string{"pay_rate"}},
			{"PayRateHuge", formWith(good, "pay_rate", "100000.01"), "pay_rate", []string{"pay_rate"}},
			{"OfferTimeoutTooShort", formWith(good, "offer_timeout_seconds", "4"), "offer_timeout_seconds", []string{"offer_timeout_seconds", "name"}},
			{"OfferTimeoutTooLong", formWith(good, "offer_timeout_seconds", "121"), "offer_timeout_seconds", []string{"offer_timeout_seconds"}},
			{"OfferTimeoutWord", formWith(good, "offer_timeout_seconds", "ten"), "offer_timeout_seconds", []string{"offer_timeout_seconds"}},
			{"OfferTimeoutEmpty", formWith(good, "offer_timeout_seconds", ""), "offer_timeout_seconds", nil},
			{"MaxWaitTooShort", formWith(good, "max_wait_seconds", "10"), "max_wait_seconds", []string{"max_wait_seconds"}},
			{"MinRatingTooHigh", formWith(good, "min_rating", "5.5"), "min_rating", []string{"min_rating"}},
			{"MinRatingWord", formWith(good, "min_rating", "x"), "min_rating", []string{"min_rating"}},
			{"MinRatingNaN", formWith(good, "min_rating", "NaN"), "min_rating", []string{"min_rating"}},
			{"MinQAScoreTooHigh", formWith(good, "min_qa_score", "101"), "min_qa_score", []string{"min_qa_score"}},
			{"MinQAScoreNegative", formWith(good, "min_qa_score", "-1"), "min_qa_score", []string{"min_qa_score"}},
			{"LanguagesBad", formWith(good, "languages", "english!!"), "languages", []string{"languages", "name"}},
			{"LanguagesEmpty", formWith(good, "languages", ""), "languages", []string{"name"}},
			{"TimeZoneUnknown", formWith(good, "time_zone", "Mars/Olympus"), "time_zone", []string{"time_zone", "name"}},
			{"TimeZoneLocal", formWith(good, "time_zone", "Local"), "time_zone", []string{"time_zone"}},
			{"CurrencyUnknown", formWith(good, "currency", "XYZ"), "currency", []string{"name", "pay_rate"}},
		}
		before := formBrand(t, db, b.ID)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rows := formRows(t, db)
				res, body := c.post("/brand/"+b.ID+"/settings", tc.form)
				formExpect(t, "POST settings", res, body, http.StatusUnprocessableEntity)
				formFieldError(t, body, tc.field)
				for _, k := range tc.keep {
					formKept(t, body, k, tc.form.Get(k))
				}
				formSameRows(t, db, rows)
				if after := formBrand(t, db, b.ID); !reflect.DeepEqual(before, after) {
					t.Errorf("brand changed by a rejected form:\nbefore %+v\nafter  %+v", before, after)
				}
			})
		}
		// Every bad field is reported, the good ones are not.
		res, body := c.post("/brand/"+b.ID+"/settings", formWith(good, "offer_timeout_seconds", "ten", "min_rating", "x", "pay_rate", "abc"))
		formExpect(t, "POST settings (three bad)", res, body, http.StatusUnprocessableEntity)
		for _, f := range []string{"offer_timeout_seconds", "min_rating", "pay_rate"} {
			formFieldError(t, body, f)
		}
		for _, f := range []string{"name", "languages", "time_zone", "max_wait_seconds", "min_qa_score", "currency"} {
			formNoFieldError(t, body, f)
		}
		// The rejected page keeps the checkbox as ticked.
		if !strings.Contains(body, `name="require_certification" checked`) {
			t.Error("the certification switch was not kept ticked")
		}
		if got := formBrand(t, db, b.ID); got.Name != "Alpha Support" || got.OfferTimeoutSeconds != 20 {
			t.Errorf("brand = %q, timeout %d; want the old name and timeout", got.Name, got.OfferTimeoutSeconds)
		}
	})
}

func TestFormSkillsAndKeysRejectBadInput(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ts := newTestServer(t, db)
		owner, b := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		if _, err := db.Store.AddSkill(ctx, owner.ID, b.ID, "Refunds"); err != nil {
			t.Fatal(err)
		}
		c := ts.client()
		c.login(owner.Email, testPassword)
		for _, tc := range []formCase{
			{"SkillEmpty", formValues("skill", " "), "skill", nil},
			{"SkillTooLong", formValues("skill", strings.Repeat("s", 61)), "skill", []string{"skill"}},
			{"SkillDuplicate", formValues("skill", "refunds"), "skill", []string{"skill"}},
			{"SkillDuplicateBySlug", formValues("skill", "  REFUNDS!  "), "skill", nil},
			{"SkillNoLetters", formValues("skill", "???"), "skill", []string{"skill"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rows := formRows(t, db)
				res, body := c.post("/brand/"+b.ID+"/skills", tc.form)
				formExpect(t, "POST skills", res, body, http.StatusUnprocessableEntity)
				formFieldError(t, body, tc.field)
				for _, k := range tc.keep {
					formKept(t, body, k, tc.form.Get(k))
				}
				formSameRows(t, db, rows)
				if !strings.Contains(body, "<code>refunds</code>") {
					t.Error("the rejected skills page does not list the catalogue")
				}
			})
		}
		for _, tc := range []formCase{
			{"KeyNameEmpty", formValues("name", ""), "name", nil},
			{"KeyNameTooLong", formValues("name", strings.Repeat("k", 61)), "name", []string{"name"}},
			{"KeyNameControl", formValues("name", "bad\x00name"), "name", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rows := formRows(t, db)
				res, body := c.post("/brand/"+b.ID+"/keys", tc.form)
				formExpect(t, "POST keys", res, body, http.StatusUnprocessableEntity)
				formFieldError(t, body, tc.field)
				for _, k := range tc.keep {
					formKept(t, body, k, tc.form.Get(k))
				}
				formSameRows(t, db, rows)
				if strings.Contains(body, `id="new-key"`) || strings.Contains(body, models.APIKeyPrefix) {
					t.Error("a rejected key form shows a key")
				}
			})
		}
	})
}

func TestFormTeamInvitationRejectsBadInput(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		owner, b := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		formReviewer(t, db, owner.ID, b.ID, "rita@alpha.test")
		c := ts.client()
		c.login(owner.Email, testPassword)
		for _, tc := range []formCase{
			{"EmailMalformed", formValues("email", "rita@@alpha", "role", "reviewer"), "email", []string{"email"}},
			{"EmailEmpty", formValues("email", "", "role", "reviewer"), "email", nil},
			{"RoleAdmin", formValues("email", "new@alpha.test", "role", "admin"), "role", []string{"email"}},
			{"RoleMissing", formValues("email", "new@alpha.test"), "role", []string{"email"}},
			{"AlreadyOwner", formValues("email", "OWNER@alpha.test", "role", "reviewer"), "email", []string{"email"}},
			{"AlreadyReviewer", formValues("email", "rita@alpha.test", "role", "owner"), "email", []string{"email"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rows := formRows(t, db)
				res, body := c.post("/brand/"+b.ID+"/team/invitations", tc.form)
				formExpect(t, "POST invitation", res, body, http.StatusUnprocessableEntity)
				formFieldError(t, body, tc.field)
				for _, k := range tc.keep {
					formKept(t, body, k, tc.form.Get(k))
				}
				formSameRows(t, db, rows)
			})
		}
	})
}

func TestFormOperatorDecisionsNeedAReason(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		pending := mustAgent(t, db, "pete@agents.test", false)
		approved := mustAgent(t, db, "ada@agents.test", true)
		mustOperator(t, db, "op@handoff.test")
		op := ts.client()
		op.login("op@handoff.test", testPassword)

		for _, reason := range []string{"", "   "} {
			rows := formRows(t, db)
			res, body := op.post("/admin/agents/"+pending.ID+"/reject", formValues("reason", reason))
			formExpect(t, "POST reject", res, body, http.StatusUnprocessableEntity)
			formFieldError(t, body, "reason")
			formSameRows(t, db, rows)
			if got := formAgent(t, db, pending.ID); got.Status != models.AgentPending {
				t.Errorf("agent after a reject without reason = %q; want pending", got.Status)
			}
		}
		long := strings.Repeat("r", 501)
		res, body := op.post("/admin/agents/"+pending.ID+"/reject", formValues("reason", long))
		formExpect(t, "POST reject (long reason)", res, body, http.StatusUnprocessableEntity)
		formFieldError(t, body, "reason")
		formKept(t, body, "reason", long)
		if got := formAgent(t, db, pending.ID); got.Status != models.AgentPending {
			t.Errorf("agent after a reject with a too-long reason = %q; want pending", got.Status)
		}

		// Suspending needs a reason; the agent stays approved and signed in.
		ac := ts.client()
		ac.login("ada@agents.test", testPassword)
		rows := formRows(t, db)
		res, body = op.post("/admin/agents/"+approved.ID+"/suspend", formValues("reason", ""))
		formExpect(t, "POST suspend", res, body, http.StatusUnprocessableEntity)
		formFieldError(t, body, "suspend_reason")
		formSameRows(t, db, rows)
		if got := formAgent(t, db, approved.ID); got.Status != models.AgentApproved {
			t.Errorf("agent after a suspend without reason = %q; want approved", got.Status)
		}
		if res, _ := ac.get("/agent"); res.StatusCode != http.StatusOK {
			t.Errorf("agent GET /agent after a rejected suspend = %d; want 200, still signed in", res.StatusCode)
		}
		res, body = op.post("/admin/agents/"+approved.ID+"/suspend", formValues("reason", long))
		formExpect(t, "POST suspend (long reason)", res, body, http.StatusUnprocessableEntity)
		formFieldError(t, body, "suspend_reason")
		formKept(t, body, "suspend_reason", long)

		// Unknown and malformed agent ids are 404.
		for _, id := range []string{"not-a-uuid", models.NewID()} {
			res, body := op.post("/admin/agents/"+id+"/reject", formValues("reason", "x"))
			tenantNotFound(t, "POST reject "+id, res, body)
		}
	})
}

func TestFormInviteAcceptRejectsShortPassword(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		owner, b := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		inv, err := db.Store.CreateInvitation(context.Background(), owner.ID, b.ID, "new@alpha.test", models.RoleReviewer)
		if err != nil {
			t.Fatal(err)
		}
		link := "/invite/" + ts.srv.keys.SignLink(invitePurpose, inv.ID)
		c := ts.client()
		for _, tc := range []formCase{
			{"PasswordShort", formValues("display_name", "Nina New", "password", "short1"), "password", []string{"display_name"}},
			{"PasswordEmpty", formValues("display_name", "Nina New", "password", ""), "password", []string{"display_name"}},
			{"NameEmpty", formValues("display_name", "", "password", "nina password 1"), "display_name", nil},
			{"NameTooLong", formValues("display_name", strings.Repeat("n", 101), "password", "nina password 1"), "display_name", []string{"display_name"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rows := formRows(t, db)
				res, body := c.post(link, tc.form)
				formExpect(t, "POST invite", res, body, http.StatusUnprocessableEntity)
				formFieldError(t, body, tc.field)
				for _, k := range tc.keep {
					formKept(t, body, k, tc.form.Get(k))
				}
				formNoPassword(t, body, tc.form.Get("password"))
				formSameRows(t, db, rows)
				if got, _ := db.Store.Invitation(context.Background(), inv.ID); got.State(db.Store.Now()) != "pending" {
					t.Errorf("invitation = %s; want still pending", got.State(db.Store.Now()))
				}
			})
		}
	})
}

func TestFormLoginRejectsEmptyFields(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		c := ts.client()
		res, body := c.post("/login", formValues("email", "", "password", ""))
		formExpect(t, "POST /login (empty)", res, body, http.StatusUnprocessableEntity)
		formFieldError(t, body, "email")
		formFieldError(t, body, "password")

		res, body = c.post("/login", formValues("email", "owner@alpha.test", "password", ""))
		formExpect(t, "POST /login (no password)", res, body, http.StatusUnprocessableEntity)
		formFieldError(t, body, "password")
		formNoFieldError(t, body, "email")
		formKept(t, body, "email", "owner@alpha.test")

		res, body = c.post("/login", formValues("email", "", "password", "typed secret 1"))
		formExpect(t, "POST /login (no email)", res, body, http.StatusUnprocessableEntity)
		formFieldError(t, body, "email")
		formNoPassword(t, body, "typed secret 1")

		res, body = c.post("/login", formValues("email", "owner@alpha.test", "password", "wrong password 1"))
		formExpect(t, "POST /login (wrong)", res, body, http.StatusUnauthorized)
		formNoPassword(t, body, "wrong password 1")
		if c.cookie(sessionCookie) != "" {
			t.Error("a failed login set a session cookie")
		}
	})
}

func TestFormUserContentIsEscaped(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		const evil = `<script>alert(1)</script>`
		const evilAttr = `"><img src=x onerror=alert(1)>`
		ts := newTestServer(t, db)
		mustOperator(t, db, "op@handoff.test")
		check := func(what, body string) {
			t.Helper()
			for _, raw := range []string{evil, "<img src=x"} {
				if strings.Contains(body, raw) {
					t.Errorf("%s: the page contains the raw %q", what, raw)
				}
			}
		}

		// A rejected form shows the name again, escaped.
		c := ts.client()
		res, body := c.post("/signup", formValues("name", evil, "email", "nope", "password", "x"))
		formExpect(t, "POST /signup (evil, bad email)", res, body, http.StatusUnprocessableEntity)
		check("rejected signup", body)
		formKept(t, body, "name", evil)

		res, body = c.post("/signup", formValues("name", evil, "email", "evil@brand.test", "password", testPassword))
		loc := formRedirect(t, "POST /signup (evil)", res, body)
		res, body = c.get(loc)
		formExpect(t, "GET "+loc, res, body, http.StatusOK)
		check("settings after signup", body)
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("settings page does not show the escaped name\n%s", formExcerpt(body))
		}
		base := strings.TrimSuffix(loc, "/settings")
		for _, p := range []struct {
			path string
			form url.Values
		}{
			{base + "/skills", formValues("skill", evil+" refunds")},
			{base + "/keys", formValues("name", evilAttr)},
			{base + "/team/invitations", formValues("email", "x@evil.test", "role", "reviewer")},
		} {
			res, body := c.post(p.path, p.form)
			if res.StatusCode >= 400 {
				t.Fatalf("POST %s = %d\n%s", p.path, res.StatusCode, formExcerpt(body))
			}
			check("POST "+p.path, body)
		}
		for _, p := range []string{base, base + "/settings", base + "/skills", base + "/keys", base + "/team"} {
			res, body := c.get(p)
			formExpect(t, "GET "+p, res, body, http.StatusOK)
			check("GET "+p, body)
		}
		// A rejected settings form with an evil time zone.
		res, body = c.post(base+"/settings", formValues("name", evil, "languages", evil, "time_zone", evilAttr, "currency", "USD",
			"pay_rate", "1", "offer_timeout_seconds", "20", "max_wait_seconds", "900"))
		formExpect(t, "POST settings (evil)", res, body, http.StatusUnprocessableEntity)
		check("rejected settings", body)

		// The operator sees the brand's names in the audit log and outbox.
		op := ts.client()
		op.login("op@handoff.test", testPassword)
		for _, p := range []string{"/admin/audit", "/admin/outbox"} {
			res, body := op.get(p)
			formExpect(t, "GET "+p, res, body, http.StatusOK)
			check("GET "+p, body)
		}
		// An agent's application with HTML in the name and bio.
		ag := ts.client()
		res, body = ag.post("/apply", formValues("display_name", evil, "email", "evil@agents.test", "password", testPassword,
			"languages", "en", "skill_1", "billing", "level_1", "3", "bio", evilAttr, "max_concurrent", "1"))
		formRedirect(t, "POST /apply (evil)", res, body)
		_, body = ag.get("/agent")
		check("GET /agent", body)
		for _, p := range []string{"/admin", "/admin/agents?status=pending"} {
			_, body := op.get(p)
			check("GET "+p, body)
		}
	})
}
