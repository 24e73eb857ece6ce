package models

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// NewID returns a new UUIDv7 string: time-ordered, safe to show in URLs.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidID reports whether s looks like an ID this package made, so handlers
// can answer 404 for garbage without asking the database.
func ValidID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// User kinds.
const (
	KindAgent    = "agent"
	KindBrand    = "brand"
	KindOperator = "operator"
)

// User is anyone who signs in: an agent, a brand teammate or an operator.
type User struct {
	ID           string
	Email        string
	PasswordHash string `json:"-"`
	DisplayName  string
	Kind         string
	Status       string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Active reports whether the user may sign in.
func (u *User) Active() bool { return u.Status == "active" }

// Session is one signed-in browser. The JWT in the cookie names it; logout,
// password change and suspension revoke it at once.
type Session struct {
	ID        string
	UserID    string
	IP        string
	UserAgent string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// Brand is a tenant: a company whose bot escalates to Handoff.
type Brand struct {
	ID                   string
	Name                 string
	Slug                 string
	TimeZone             string
	Languages            string // comma-separated BCP 47 tags
	PayRateMinor         int64
	Currency             string
	MoneyRecordedAt      *time.Time
	OfferTimeoutSeconds  int
	MaxWaitSeconds       int
	MinRating            float64
	MinQAScore           float64 `gorm:"column:min_qa_score"`
	MinSkillLevel        int     // every required skill at this level or above (1–5)
	RequireCertification bool
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// LanguageList returns the brand's languages as a slice.
func (b *Brand) LanguageList() []string { return splitList(b.Languages) }

// CurrencyLocked reports whether money has been recorded in the brand's
// currency, after which it cannot change.
func (b *Brand) CurrencyLocked() bool { return b.MoneyRecordedAt != nil }

// Brand member roles.
const (
	RoleOwner    = "owner"
	RoleReviewer = "reviewer"
)

// BrandMember ties a brand user to a brand with a role.
type BrandMember struct {
	BrandID   string `gorm:"primaryKey"`
	UserID    string `gorm:"primaryKey"`
	Role      string
	CreatedAt time.Time
	User      *User  `gorm:"foreignKey:UserID"`
	Brand     *Brand `gorm:"foreignKey:BrandID"`
}

// BrandSkill is one entry of a brand's skill catalogue.
type BrandSkill struct {
	ID        string
	BrandID   string
	Slug      string
	Name      string
	CreatedAt time.Time
}

// APIKey is a brand's bot credential. Only its SHA-256 digest is stored.
type APIKey struct {
	ID         string
	BrandID    string
	Name       string
	Prefix     string
	Digest     string `json:"-"`
	CreatedBy  *string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Invitation asks someone to join a brand's team.
type Invitation struct {
	ID         string
	BrandID    string
	Email      string
	Role       string
	InvitedBy  *string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt *time.Time
	RevokedAt  *time.Time
}

// State is "pending", "accepted", "revoked" or "expired" at now.
func (i *Invitation) State(now time.Time) string {
	switch {
	case i.AcceptedAt != nil:
		return "accepted"
	case i.RevokedAt != nil:
		return "revoked"
	case !now.Before(i.ExpiresAt):
		return "expired"
	}
	return "pending"
}

// Agent application statuses.
const (
	AgentPending   = "pending"
	AgentApproved  = "approved"
	AgentRejected  = "rejected"
	AgentSuspended = "suspended"
)

// Presence values.
const (
	PresenceOffline = "offline"
	PresenceOnline  = "online"
	PresenceAway    = "away"
)

// Agent is a freelancer's profile and vetting state.
type Agent struct {
	ID             string
	UserID         string
	Bio            string
	MaxConcurrent  int
	Status         string
	DecisionReason string
	DecidedBy      *string
	DecidedAt      *time.Time
	Presence       string
	LastSeenAt     *time.Time
	MissedOffers   int        // offers missed in a row
	FreeSince      *time.Time // when the agent last finished a chat
	ResolvedCount  int        // conversations resolved
	RatingSum      int        // sum of the customers' ratings (1–5 each)
	RatingCount    int        // how many ratings
	CreatedAt      time.Time
	UpdatedAt      time.Time

	User      *User           `gorm:"foreignKey:UserID"`
	Languages []AgentLanguage `gorm:"foreignKey:AgentID"`
	Skills    []AgentSkill    `gorm:"foreignKey:AgentID"`
}

// AgentLanguage is a language an agent serves in.
type AgentLanguage struct {
	AgentID  string `gorm:"primaryKey"`
	Language string `gorm:"primaryKey"`
}

// AgentSkill is a skill an agent claims, at a level 1–5.
type AgentSkill struct {
	AgentID string `gorm:"primaryKey"`
	Skill   string `gorm:"primaryKey"`
	Level   int
}

// AuditEntry records an operator action or a brand setting change.
type AuditEntry struct {
	ID         string
	ActorID    *string
	BrandID    *string
	Action     string
	TargetType string
	TargetID   string
	Detail     string
	CreatedAt  time.Time
	Actor      *User `gorm:"foreignKey:ActorID"`
}

// TableName keeps the table's singular name.
func (AuditEntry) TableName() string { return "audit_log" }

// Mail is a message in the outbox: sent through SMTP when configured,
// otherwise kept for the operator to read.
type Mail struct {
	ID        string
	ToAddr    string
	Subject   string
	Body      string
	CreatedAt time.Time
	SentAt    *time.Time
	Error     string
}

// TableName names the outbox table.
func (Mail) TableName() string { return "mail_outbox" }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
