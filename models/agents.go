package models

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"gorm.io/gorm"
)

// AgentApplication is what a freelancer sends to apply.
type AgentApplication struct {
	DisplayName   string
	Email         string
	Password      string
	Languages     []string
	Skills        map[string]int // skill slug → level 1–5
	Bio           string
	MaxConcurrent int
}

// ApplyAsAgent creates the agent's account and pending application.
func (s *Store) ApplyAsAgent(ctx context.Context, in AgentApplication) (*Agent, error) {
	v := &ValidationError{}
	name := checkText(v, "display_name", in.DisplayName, true, MaxNameLen)
	email := checkEmail(v, "email", in.Email)
	checkPassword(v, "password", in.Password)
	langs := checkLanguages(v, "languages", in.Languages)
	bio := checkText(v, "bio", in.Bio, true, MaxBioLen)
	if in.MaxConcurrent < 1 || in.MaxConcurrent > 3 {
		v.Add("max_concurrent", "must be 1, 2 or 3")
	}
	skills := map[string]int{}
	for raw, level := range in.Skills {
		slug := Slugify(raw)
		switch {
		case slug == "" || len(raw) > MaxSkillNameLen:
			v.Add("skills", "“"+truncate(raw, 30)+"” is not a skill name")
		case level < 1 || level > 5:
			v.Add("skills", "the level of “"+slug+"” must be 1 to 5")
		default:
			skills[slug] = level
		}
	}
	switch {
	case len(skills) == 0 && len(in.Skills) == 0:
		v.Add("skills", "name at least one skill")
	case len(skills) > MaxAgentSkills:
		v.Add("skills", fmt.Sprintf("at most %d skills", MaxAgentSkills))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	var a *Agent
	hash, err := s.hashPassword(in.Password)
	if err != nil {
		return nil, err
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		u := &User{Email: email, DisplayName: name, Kind: KindAgent}
		if err := s.createUser(tx, u, hash); err != nil {
			return err
		}
		now := s.Now()
		a = &Agent{ID: NewID(), UserID: u.ID, Bio: bio, MaxConcurrent: in.MaxConcurrent, Status: AgentPending,
			Presence: PresenceOffline, CreatedAt: now, UpdatedAt: now}
		if err := tx.Omit("User", "Languages", "Skills").Create(a).Error; err != nil {
			return err
		}
		for _, l := range langs {
			if err := tx.Create(&AgentLanguage{AgentID: a.ID, Language: l}).Error; err != nil {
				return err
			}
		}
		for _, slug := range sortedKeys(skills) {
			if err := tx.Create(&AgentSkill{AgentID: a.ID, Skill: slug, Level: skills[slug]}).Error; err != nil {
				return err
			}
		}
		a.User = u
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Agent(ctx, a.ID)
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Store) agentQuery(ctx context.Context) *gorm.DB {
	return s.DB.WithContext(ctx).Preload("User").Preload("Languages", func(db *gorm.DB) *gorm.DB { return db.Order("language") }).
		Preload("Skills", func(db *gorm.DB) *gorm.DB { return db.Order("skill") })
}

// Agent returns an agent with account, languages and skills.
func (s *Store) Agent(ctx context.Context, id string) (*Agent, error) {
	var a Agent
	if err := s.agentQuery(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, notFound(err, "agent")
	}
	return &a, nil
}

// AgentName returns an agent's display name.
func (s *Store) AgentName(ctx context.Context, id string) (string, error) {
	var names []string
	if err := s.DB.WithContext(ctx).Raw("SELECT users.display_name FROM agents JOIN users ON users.id = agents.user_id WHERE agents.id = ?", id).Find(&names).Error; err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", ErrNotFound
	}
	return names[0], nil
}

// AgentByUser returns the agent profile of a user.
func (s *Store) AgentByUser(ctx context.Context, userID string) (*Agent, error) {
	var a Agent
	if err := s.agentQuery(ctx).Where("user_id = ?", userID).Take(&a).Error; err != nil {
		return nil, notFound(err, "agent")
	}
	return &a, nil
}

// Agents lists agents with a status ("" for all), oldest application first.
func (s *Store) Agents(ctx context.Context, status string, limit int) ([]Agent, error) {
	if limit <= 0 || limit > 500 {
		limit = 200
	}
	q := s.agentQuery(ctx).Order("created_at, id").Limit(limit)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	var out []Agent
	return out, q.Find(&out).Error
}

// LanguageTags returns the agent's languages.
func (a *Agent) LanguageTags() []string {
	out := make([]string, len(a.Languages))
	for i, l := range a.Languages {
		out[i] = l.Language
	}
	return out
}

// DecideApplication approves or rejects a pending application. A rejection
// needs a reason. Returns ErrConflict when it was already decided.
func (s *Store) DecideApplication(ctx context.Context, operatorID, agentID string, approve bool, reason string) error {
	v := &ValidationError{}
	reason = checkText(v, "reason", reason, !approve, MaxReasonLen)
	if err := v.Err(); err != nil {
		return err
	}
	status, action := AgentApproved, "agent.approved"
	if !approve {
		status, action = AgentRejected, "agent.rejected"
	}
	return s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		res := tx.Model(&Agent{}).Where("id = ? AND status = ?", agentID, AgentPending).Updates(map[string]any{
			"status": status, "decision_reason": reason, "decided_by": operatorID, "decided_at": now, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if _, err := s.agentStatus(tx, agentID); err != nil {
				return err
			}
			return fmt.Errorf("application already decided: %w", ErrConflict)
		}
		return s.audit(tx, operatorID, "", action, "agent", agentID, map[string]string{"reason": reason})
	})
}

func (s *Store) agentStatus(tx *gorm.DB, agentID string) (string, error) {
	var a Agent
	if err := tx.Select("status").Where("id = ?", agentID).Take(&a).Error; err != nil {
		return "", notFound(err, "agent")
	}
	return a.Status, nil
}

// SuspendAgent suspends an agent: status suspended, presence offline,
// account suspended, every session revoked, pending offer withdrawn and
// chats back in the queue, in one transaction, so the agent is out at their
// next request. Callers also close the agent's live connections.
func (s *Store) SuspendAgent(ctx context.Context, operatorID, agentID, reason string) (*Agent, error) {
	v := &ValidationError{}
	reason = checkText(v, "reason", reason, true, MaxReasonLen)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var a Agent
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", agentID).Take(&a).Error; err != nil {
			return notFound(err, "agent")
		}
		if a.Status == AgentSuspended {
			return fmt.Errorf("agent already suspended: %w", ErrConflict)
		}
		now := s.Now()
		if err := tx.Model(&Agent{}).Where("id = ?", a.ID).Updates(map[string]any{
			"status": AgentSuspended, "presence": PresenceOffline, "decision_reason": reason,
			"decided_by": operatorID, "decided_at": now, "updated_at": now}).Error; err != nil {
			return err
		}
		if err := tx.Model(&User{}).Where("id = ?", a.UserID).Updates(map[string]any{"status": "suspended", "updated_at": now}).Error; err != nil {
			return err
		}
		if err := revokeUserSessions(tx, a.UserID, now); err != nil {
			return err
		}
		// Their pending offer is withdrawn and their chats go back to the
		// queue at once, unpaid.
		var offers []Offer
		if err := tx.Where("agent_id = ? AND status = ?", a.ID, OfferPending).Find(&offers).Error; err != nil {
			return err
		}
		for _, o := range offers {
			if err := tx.Model(&Offer{}).Where("id = ? AND status = ?", o.ID, OfferPending).
				Updates(map[string]any{"status": OfferRescinded, "answered_at": now}).Error; err != nil {
				return err
			}
			if err := requeue(tx, o.ConversationID, now); err != nil {
				return err
			}
		}
		if err := tx.Model(&Conversation{}).Where("agent_id = ? AND status = ?", a.ID, ConvActive).
			Updates(map[string]any{"status": ConvQueued, "agent_id": nil, "assigned_at": nil, "queued_at": now, "updated_at": now}).Error; err != nil {
			return err
		}
		return s.audit(tx, operatorID, "", "agent.suspended", "agent", a.ID, map[string]string{"reason": reason})
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// SetPresence sets an agent online, away or offline. Only an approved agent
// may go online or away: anyone else gets ErrForbidden.
func (s *Store) SetPresence(ctx context.Context, agentID, presence string) error {
	return s.SetAvailability(ctx, agentID, presence, 0)
}

// SetAvailability sets presence and, when capacity is not 0, how many chats
// the agent takes at once (1–3), in one transaction. Only an approved agent
// may go online or away: anyone else gets ErrForbidden.
func (s *Store) SetAvailability(ctx context.Context, agentID, presence string, capacity int) error {
	v := &ValidationError{}
	switch presence {
	case PresenceOnline, PresenceAway, PresenceOffline:
	default:
		v.Add("presence", "must be online, away or offline")
	}
	if capacity != 0 && (capacity < 1 || capacity > 3) {
		v.Add("capacity", "must be 1, 2 or 3")
	}
	if err := v.Err(); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		q := tx.Model(&Agent{}).Where("id = ?", agentID)
		if presence != PresenceOffline {
			q = q.Where("status = ?", AgentApproved)
		}
		upd := map[string]any{"presence": presence, "last_seen_at": now, "updated_at": now}
		if capacity != 0 {
			upd["max_concurrent"] = capacity
		}
		if presence == PresenceOnline {
			upd["missed_offers"] = 0
		}
		res := q.Updates(upd)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			st, err := s.agentStatus(tx, agentID)
			if err != nil {
				return err
			}
			return fmt.Errorf("agent is %s, not approved: %w", strings.ToLower(st), ErrForbidden)
		}
		return nil
	})
}
