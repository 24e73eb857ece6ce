package app

import (
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// earningTotal is the sum of earnings in one currency.
type earningTotal struct {
	Currency string
	NetMinor int64
	Count    int
}

// handleAgentEarnings lists what the agent earned per resolved
// conversation, with totals per currency.
func (s *Server) handleAgentEarnings(c echo.Context) error {
	a := currentAgent(c)
	list, err := s.store.Earnings(c.Request().Context(), a.ID, 200)
	if err != nil {
		return err
	}
	totals := map[string]*earningTotal{}
	var order []string
	for _, e := range list {
		t := totals[e.Currency]
		if t == nil {
			t = &earningTotal{Currency: e.Currency}
			totals[e.Currency] = t
			order = append(order, e.Currency)
		}
		t.NetMinor += e.NetMinor
		t.Count++
	}
	var sums []earningTotal
	for _, cur := range order {
		sums = append(sums, *totals[cur])
	}
	v := s.newView(c, "Earnings")
	v.Data["Agent"], v.Data["Earnings"], v.Data["Totals"] = a, list, sums
	v.Data["Statuses"] = map[string]string{models.EarningHeld: "held during the review window", models.EarningAwaitingStripe: "waiting for your Stripe account"}
	return s.render(c, http.StatusOK, "agent_earnings", v)
}
