package models

import (
	"context"
	"errors"
	"strings"
)

// DemoPassword is the password of every demo account. Demo data is for local
// runs; never seed a production database.
const DemoPassword = "handoff-demo"

// DemoLogin is one account the seed made, printed for the person running it.
type DemoLogin struct {
	Role, Email, Password string
}

// DemoLogins are the accounts Seed creates.
var DemoLogins = []DemoLogin{
	{"operator", "operator@handoff.local", DemoPassword},
	{"brand owner (Acme)", "owner@acme.example", DemoPassword},
	{"agent (Maya, billing + refunds, en/es)", "maya@agents.example", DemoPassword},
	{"agent (Tom, technical, en)", "tom@agents.example", DemoPassword},
	{"agent (Lea, shipping + billing, en/de)", "lea@agents.example", DemoPassword},
}

// Seed creates the demo data once: an operator, the brand Acme (slug acme,
// serving English) with a skill catalogue, and three approved agents.
// Running it again changes nothing and reports created=false.
func (s *Store) Seed(ctx context.Context) (created bool, err error) {
	if _, err := s.BrandBySlug(ctx, "acme"); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	op, err := s.EnsureOperator(ctx, DemoLogins[0].Email, "Olivia (operator)", DemoPassword)
	if err != nil {
		return false, err
	}
	owner, brand, err := s.SignUpBrand(ctx, BrandSignup{Name: "Acme", Email: DemoLogins[1].Email, Password: DemoPassword})
	if err != nil {
		// Another seed won the race for the slug or the email.
		if _, e := s.BrandBySlug(ctx, "acme"); e == nil {
			return false, nil
		}
		return false, err
	}
	if brand.Slug != "acme" {
		return false, errors.New("seed: the slug acme is taken")
	}
	set := SettingsOf(brand)
	set.PayRateMinor, set.Languages, set.MinRating = 450, []string{"en"}, 4.0
	if _, err := s.UpdateBrandSettings(ctx, owner.ID, brand.ID, set); err != nil {
		return false, err
	}
	for _, sk := range []string{"Billing", "Refunds", "Technical", "Shipping"} {
		if _, err := s.AddSkill(ctx, owner.ID, brand.ID, sk); err != nil {
			return false, err
		}
	}
	agents := []AgentApplication{
		{DisplayName: "Maya", Email: DemoLogins[2].Email, Languages: []string{"en", "es"}, Skills: map[string]int{"billing": 5, "refunds": 4}, Bio: "Five years of billing support for SaaS brands.", MaxConcurrent: 3},
		{DisplayName: "Tom", Email: DemoLogins[3].Email, Languages: []string{"en"}, Skills: map[string]int{"technical": 4}, Bio: "Former help-desk engineer; calm with angry customers.", MaxConcurrent: 2},
		{DisplayName: "Lea", Email: DemoLogins[4].Email, Languages: []string{"en", "de"}, Skills: map[string]int{"shipping": 3, "billing": 2}, Bio: "E-commerce support in English and German.", MaxConcurrent: 1},
	}
	for _, in := range agents {
		in.Password = DemoPassword
		a, err := s.ApplyAsAgent(ctx, in)
		if err != nil {
			return false, err
		}
		if err := s.DecideApplication(ctx, op.ID, a.ID, true, "demo agent"); err != nil {
			return false, err
		}
	}
	return true, nil
}

// DemoSummary is the text printed after seeding, one login a line.
func DemoSummary(baseURL string) string {
	var b strings.Builder
	b.WriteString("Sign in at " + strings.TrimRight(baseURL, "/") + "/login with a demo account (password " + DemoPassword + "):\n")
	for _, l := range DemoLogins {
		b.WriteString("  " + l.Email + "  — " + l.Role + "\n")
	}
	return b.String()
}
