package app

import (
	"net/http"

	"github.com/handoffhq/handoff/matching"
	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// queueRow is a waiting conversation on the brand's live queue.
type queueRow struct {
	Conv     models.Conversation
	Position int
}

// handleBrandQueue shows the brand's waiting conversations in dispatch
// order and the latest ones; the page updates live over the brand topic.
func (s *Server) handleBrandQueue(c echo.Context) error {
	ctx := c.Request().Context()
	b := member(c).Brand
	waiting, err := s.store.WaitingConversations(ctx, b.ID)
	if err != nil {
		return err
	}
	order := make([]matching.Conversation, len(waiting))
	byID := map[string]models.Conversation{}
	for i := range waiting {
		order[i] = matchConv(&waiting[i])
		byID[waiting[i].ID] = waiting[i]
	}
	matching.SortQueue(order)
	rows := make([]queueRow, len(order))
	for i, mc := range order {
		rows[i] = queueRow{Conv: byID[mc.ID], Position: i + 1}
	}
	recent, err := s.store.RecentConversations(ctx, b.ID, 50)
	if err != nil {
		return err
	}
	v := s.newView(c, "Live queue · "+b.Name)
	v.Data["Brand"], v.Data["Queue"], v.Data["Recent"], v.Data["Now"] = b, rows, recent, s.store.Now()
	return s.render(c, http.StatusOK, "brand_queue", v)
}

// timelineOffer is one offer on a conversation's timeline, with its stored
// explanation.
type timelineOffer struct {
	models.Offer
	AgentName string
	Why       string
	Detail    *matching.Explanation
}

// handleBrandConversation shows one conversation's timeline: escalated,
// every offer (to whom, why, how it ended), accepted, resolved, rated — and
// the messages. Another brand's conversation is 404.
func (s *Server) handleBrandConversation(c echo.Context) error {
	ctx := c.Request().Context()
	b := member(c).Brand
	id := c.Param("conversation")
	if !models.ValidID(id) {
		return echo.ErrNotFound
	}
	conv, err := s.store.Conversation(ctx, b.ID, id)
	if err != nil {
		return err
	}
	offers, err := s.store.Offers(ctx, conv.ID)
	if err != nil {
		return err
	}
	names := map[string]string{}
	var rows []timelineOffer
	for _, o := range offers {
		if _, ok := names[o.AgentID]; !ok {
			if a, err := s.store.Agent(ctx, o.AgentID); err == nil {
				names[o.AgentID] = a.User.DisplayName
			}
		}
		row := timelineOffer{Offer: o, AgentName: names[o.AgentID], Why: explanationSummary(o.Explanation)}
		var e matching.Explanation
		if jsonUnmarshal(o.Explanation, &e) == nil {
			row.Detail = &e
		}
		rows = append(rows, row)
	}
	msgs, err := s.store.Messages(ctx, conv.ID, 0, 0)
	if err != nil {
		return err
	}
	agentName := ""
	if conv.AgentID != nil {
		agentName = names[*conv.AgentID]
		if agentName == "" {
			if a, err := s.store.Agent(ctx, *conv.AgentID); err == nil {
				agentName = a.User.DisplayName
			}
		}
	}
	v := s.newView(c, "Conversation "+conv.ExternalID)
	v.Data["Brand"], v.Data["Conv"], v.Data["Offers"], v.Data["Messages"], v.Data["AgentName"] = b, conv, rows, msgs, agentName
	return s.render(c, http.StatusOK, "brand_conversation", v)
}
