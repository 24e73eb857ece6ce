package app

import (
	"fmt"
	"net/http"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// escalationRequest is the body of POST /api/v1/escalations.
type escalationRequest struct {
	ExternalID string `json:"external_id"`
	Customer   struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"customer"`
	Language   string                   `json:"language"`
	Skills     []string                 `json:"skills"`
	Priority   *int                     `json:"priority"`
	Reason     string                   `json:"reason"`
	Summary    string                   `json:"summary"`
	Transcript []models.TranscriptEntry `json:"transcript"`
	Metadata   map[string]string        `json:"metadata"`
}

// escalationResponse answers an escalation.
type escalationResponse struct {
	ID                   string `json:"id"`
	Status               string `json:"status"`
	CustomerURL          string `json:"customer_url"`
	EstimatedWaitSeconds *int   `json:"estimated_wait_seconds"`
	QueuePosition        int    `json:"queue_position"`
	EligibleAgentsOnline int    `json:"eligible_agents_online"`
}

// handleAPIEscalationCreate hands a customer over: 201 with a new
// conversation, or 200 with the open one of the same external_id.
func (s *Server) handleAPIEscalationCreate(c echo.Context) error {
	if err := s.shed(); err != nil {
		return err
	}
	var req escalationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	b := apiBrand(c)
	skills, err := s.brandSkills(ctx, b.ID)
	if err != nil {
		return err
	}
	// On the offer path: ahead of other writes waiting on SQLite.
	esc, err := s.store.EscalatePlaced(models.Urgent(ctx), b.ID, skills, models.Escalation{
		ExternalID: req.ExternalID, CustomerName: req.Customer.Name, CustomerEmail: req.Customer.Email,
		Language: req.Language, Skills: req.Skills, Priority: req.Priority, Reason: req.Reason,
		Summary: req.Summary, Transcript: req.Transcript, Metadata: req.Metadata,
	})
	if err != nil {
		return err
	}
	conv, created := esc.Conversation, esc.Created
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.publishConversation(conv)
		s.queue.changed()
		s.wake()
	}
	info, err := s.queueInfo(ctx, b, conv, esc.Place)
	if err != nil {
		return err
	}
	resp := escalationResponse{ID: conv.ID, Status: conv.Status, CustomerURL: s.customerURL(conv.ID),
		QueuePosition: info.Position, EligibleAgentsOnline: info.EligibleOnline}
	if info.Known {
		secs := int((info.Wait + time.Second - 1) / time.Second)
		resp.EstimatedWaitSeconds = &secs
	}
	if created {
		c.Response().Header().Set("Location", "/api/v1/conversations/"+conv.ID)
	}
	return c.JSON(status, resp)
}

// shed refuses a new escalation while the database's work queues in this
// process longer than cfg.ShedWriteWait: on SQLite the write that has
// waited longest for its turn (WriteBacklog); on PostgreSQL the mean wait
// for a connection of the pool over the last quarter second (PoolWait), or
// the other instances' news waiting longest to be delivered here (its rows
// read for the sockets here: peers.backlog), whichever is longer.
// Taken in, it would wait with everything else, and the accepts, messages
// and resolves of the conversations already taken in would be the work
// that times out. The bot retries after Retry-After (with the same
// external_id, the retry cannot make a second conversation).
func (s *Server) shed() error {
	if s.cfg.ShedWriteWait <= 0 {
		return nil
	}
	wait, what := s.store.WriteBacklog(), "its database writes are queueing (the oldest has waited %d ms"
	if s.store.Dialect == models.Postgres {
		wait, what = s.store.PoolWait(), "requests are queueing for its database connections (%d ms on average"
		if lag := s.peers.backlog(); lag > wait {
			wait, what = lag, "the other instances' news is waiting to reach the conversations here (the oldest for %d ms"
		}
	}
	if wait > s.cfg.ShedWriteWait {
		s.metrics.shed.Inc()
		return &overloaded{retryAfter: 1, detail: fmt.Sprintf(
			"The server is overloaded: "+what+", past HANDOFF_SHED_WRITE_WAIT %s). Retry after a second; nothing was stored.",
			wait.Milliseconds(), s.cfg.ShedWriteWait)}
	}
	return nil
}
