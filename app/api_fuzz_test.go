package app

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/handoffhq/handoff/models"
)

// FuzzEscalationBody: whatever a bot sends, decoding and validation never
// panic, and an escalation that passes validation is within every limit
// of the contract.
func FuzzEscalationBody(f *testing.F) {
	for _, seed := range []string{
		`{"external_id":"chat-8812","customer":{"name":"Ada","email":"ada@example.com"},"language":"en","skills":["billing","refunds"],"priority":5,"reason":"asked for a human","summary":"Charged twice","transcript":[{"role":"customer","text":"I was charged twice","at":"2026-11-27T10:00:00Z"},{"role":"bot","text":"Sorry","at":"2026-11-27T10:00:05Z"}],"metadata":{"order":"1142"}}`,
		`{"external_id":"x","language":"pt-BR"}`, `{"external_id":"","language":"english!!"}`,
		`{"external_id":"x","language":"en","priority":10}`, `{"priority":"high"}`, `{`, `[]`, `null`,
		`{"external_id":"x","language":"en","transcript":[{"role":"agent","text":""}]}`,
		`{"external_id":"x","language":"en","skills":["astrology"]}`,
	} {
		f.Add([]byte(seed))
	}
	catalogue := map[string]bool{"billing": true, "refunds": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req escalationRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		in, err := models.ValidateEscalation(models.Escalation{
			ExternalID: req.ExternalID, CustomerName: req.Customer.Name, CustomerEmail: req.Customer.Email,
			Language: req.Language, Skills: req.Skills, Priority: req.Priority, Reason: req.Reason,
			Summary: req.Summary, Transcript: req.Transcript, Metadata: req.Metadata,
		}, catalogue)
		if err != nil {
			if !errors.Is(err, models.ErrInvalid) {
				t.Fatalf("validation error %v is not ErrInvalid", err)
			}
			return
		}
		switch {
		case in.ExternalID == "" || utf8.RuneCountInString(in.ExternalID) > models.MaxExternalIDLen:
			t.Fatalf("accepted external_id %q", in.ExternalID)
		case in.Priority == nil || *in.Priority < 0 || *in.Priority > 9:
			t.Fatalf("accepted priority %v", in.Priority)
		case len(in.Transcript) > models.MaxTranscriptEntries:
			t.Fatalf("accepted %d transcript entries", len(in.Transcript))
		case strings.TrimSpace(in.Language) == "":
			t.Fatal("accepted an empty language")
		}
		for _, s := range in.Skills {
			if !catalogue[s] {
				t.Fatalf("accepted skill %q outside the catalogue", s)
			}
		}
		for _, e := range in.Transcript {
			if (e.Role != "customer" && e.Role != "bot") || strings.TrimSpace(e.Text) == "" {
				t.Fatalf("accepted transcript entry %+v", e)
			}
		}
	})
}
