package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
)

func TestBrandOwnerSignsInAndSeesDashboard(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, b := mustBrand(t, db, "Acme", "owner@acme.test")
		c := ts.client()
		c.login("owner@acme.test", testPassword)
		res, body := c.get("/brand/" + b.ID)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "Getting started") {
			t.Fatalf("GET dashboard = %d; want 200 with the checklist\n%s", res.StatusCode, body)
		}
	})
}
