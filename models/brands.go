package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// BrandSignup is what a new brand gives to start.
type BrandSignup struct {
	Name     string
	Email    string
	Password string
}

// SignUpBrand creates the brand, its owner account and the membership in one
// transaction. The slug is derived from the name and made unique.
func (s *Store) SignUpBrand(ctx context.Context, in BrandSignup) (*User, *Brand, error) {
	v := &ValidationError{}
	name := checkText(v, "name", in.Name, true, MaxNameLen)
	email := checkEmail(v, "email", in.Email)
	checkPassword(v, "password", in.Password)
	base := Slugify(name)
	if name != "" && base == "" {
		v.Add("name", "must contain at least one letter or digit")
	}
	if err := v.Err(); err != nil {
		return nil, nil, err
	}
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	var u *User
	var b *Brand
	hash, err := s.hashPassword(in.Password)
	if err != nil {
		return nil, nil, err
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		u = &User{Email: email, DisplayName: name, Kind: KindBrand}
		if err := s.createUser(tx, u, hash); err != nil {
			return err
		}
		now := s.Now()
		b = &Brand{ID: NewID(), Name: name, TimeZone: "UTC", Languages: "en", Currency: "USD",
			OfferTimeoutSeconds: 20, MaxWaitSeconds: 900, MinSkillLevel: 1, CreatedAt: now, UpdatedAt: now}
		if err := createWithFreeSlug(tx, b, base); err != nil {
			return err
		}
		slug := b.Slug
		if err := tx.Create(&BrandMember{BrandID: b.ID, UserID: u.ID, Role: RoleOwner, CreatedAt: now}).Error; err != nil {
			return err
		}
		return s.audit(tx, u.ID, b.ID, "brand.created", "brand", b.ID, map[string]string{"name": name, "slug": slug})
	})
	if err != nil {
		return nil, nil, err
	}
	return u, b, nil
}

// createWithFreeSlug inserts b under the first free slug of base, base-2,
// base-3… A slug that a concurrent sign-up takes between the check and the
// insert is skipped (ON CONFLICT DO NOTHING, which on PostgreSQL waits for
// that sign-up to finish) instead of failing with a duplicate key.
func createWithFreeSlug(tx *gorm.DB, b *Brand, base string) error {
	for i := 1; i < 1000; i++ {
		slug := base
		if i > 1 {
			slug = fmt.Sprintf("%s-%d", base, i)
		}
		var n int64
		if err := tx.Model(&Brand{}).Where("slug = ?", slug).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		b.Slug = slug
		res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "slug"}}, DoNothing: true}).Create(b)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 1 {
			return nil
		}
	}
	return fmt.Errorf("no free slug for %q: %w", base, ErrConflict)
}

// Brand returns a brand by id.
func (s *Store) Brand(ctx context.Context, id string) (*Brand, error) {
	var b Brand
	if err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&b).Error; err != nil {
		return nil, notFound(err, "brand")
	}
	return &b, nil
}

// BrandBySlug returns a brand by slug.
func (s *Store) BrandBySlug(ctx context.Context, slug string) (*Brand, error) {
	var b Brand
	if err := s.DB.WithContext(ctx).Where("slug = ?", slug).Take(&b).Error; err != nil {
		return nil, notFound(err, "brand")
	}
	return &b, nil
}

// Membership returns the user's membership of the brand (with the brand), or
// ErrNotFound: a user asking for another tenant's brand learns nothing.
func (s *Store) Membership(ctx context.Context, brandID, userID string) (*BrandMember, error) {
	var m BrandMember
	err := s.DB.WithContext(ctx).Preload("Brand").Where("brand_id = ? AND user_id = ?", brandID, userID).Take(&m).Error
	if err != nil {
		return nil, notFound(err, "brand")
	}
	return &m, nil
}

// Memberships lists the brands a user belongs to, oldest first.
func (s *Store) Memberships(ctx context.Context, userID string) ([]BrandMember, error) {
	var out []BrandMember
	return out, s.DB.WithContext(ctx).Preload("Brand").Where("user_id = ?", userID).Order("created_at").Find(&out).Error
}

// Members lists a brand's team with their accounts.
func (s *Store) Members(ctx context.Context, brandID string) ([]BrandMember, error) {
	var out []BrandMember
	return out, s.DB.WithContext(ctx).Preload("User").Where("brand_id = ?", brandID).Order("created_at").Find(&out).Error
}

// BrandSettings are the settings a brand owner edits in one form.
type BrandSettings struct {
	Name                 string
	Languages            []string
	TimeZone             string
	PayRateMinor         int64
	Currency             string
	OfferTimeoutSeconds  int
	MaxWaitSeconds       int
	MinRating            float64
	MinQAScore           float64
	MinSkillLevel        int // 1–5; 0 means 1
	RequireCertification bool
}

// SettingsOf returns the brand's current settings.
func SettingsOf(b *Brand) BrandSettings {
	return BrandSettings{Name: b.Name, Languages: b.LanguageList(), TimeZone: b.TimeZone, PayRateMinor: b.PayRateMinor,
		Currency: b.Currency, OfferTimeoutSeconds: b.OfferTimeoutSeconds, MaxWaitSeconds: b.MaxWaitSeconds,
		MinRating: b.MinRating, MinQAScore: b.MinQAScore, MinSkillLevel: b.MinSkillLevel, RequireCertification: b.RequireCertification}
}

// ValidateBrandSettings checks every field and returns the settings normalised.
func ValidateBrandSettings(in BrandSettings) (BrandSettings, error) {
	v := &ValidationError{}
	in.Name = checkText(v, "name", in.Name, true, MaxNameLen)
	in.Languages = checkLanguages(v, "languages", in.Languages)
	in.TimeZone = checkTimeZone(v, "time_zone", in.TimeZone)
	in.Currency = strings.ToUpper(strings.TrimSpace(in.Currency))
	if _, ok := Currencies[in.Currency]; !ok {
		v.Add("currency", "choose a supported currency")
	}
	if in.PayRateMinor < 0 || in.PayRateMinor > MaxPayRateMinor {
		v.Add("pay_rate", "must be between 0 and "+FormatMoney(MaxPayRateMinor, "USD"))
	}
	if in.OfferTimeoutSeconds < MinOfferTimeout || in.OfferTimeoutSeconds > MaxOfferTimeout {
		v.Add("offer_timeout_seconds", fmt.Sprintf("must be between %d and %d seconds", MinOfferTimeout, MaxOfferTimeout))
	}
	if in.MaxWaitSeconds < MinMaxWaitSeconds || in.MaxWaitSeconds > MaxMaxWaitSeconds {
		v.Add("max_wait_seconds", fmt.Sprintf("must be between %d and %d seconds", MinMaxWaitSeconds, MaxMaxWaitSeconds))
	}
	if in.MinRating < 0 || in.MinRating > 5 || in.MinRating != in.MinRating {
		v.Add("min_rating", "must be between 0 and 5")
	}
	if in.MinQAScore < 0 || in.MinQAScore > 100 || in.MinQAScore != in.MinQAScore {
		v.Add("min_qa_score", "must be between 0 and 100")
	}
	if in.MinSkillLevel == 0 {
		in.MinSkillLevel = 1
	}
	if in.MinSkillLevel < 1 || in.MinSkillLevel > 5 {
		v.Add("min_skill_level", "must be between 1 and 5")
	}
	return in, v.Err()
}

// UpdateBrandSettings saves the settings and writes the changed fields to the
// audit log, in one transaction. The currency cannot change once money has
// been recorded in it.
func (s *Store) UpdateBrandSettings(ctx context.Context, actorID, brandID string, in BrandSettings) (*Brand, error) {
	in, err := ValidateBrandSettings(in)
	if err != nil {
		return nil, err
	}
	var out *Brand
	err = s.tx(ctx, func(tx *gorm.DB) error {
		var b Brand
		if err := tx.Where("id = ?", brandID).Take(&b).Error; err != nil {
			return notFound(err, "brand")
		}
		if b.CurrencyLocked() && in.Currency != b.Currency {
			return Invalid("currency", "is fixed at "+b.Currency+" because money has been recorded in it")
		}
		before := SettingsOf(&b)
		changes := diffSettings(before, in)
		if len(changes) == 0 {
			out = &b
			return nil
		}
		upd := map[string]any{
			"name": in.Name, "languages": strings.Join(in.Languages, ","), "time_zone": in.TimeZone,
			"pay_rate_minor": in.PayRateMinor, "currency": in.Currency, "offer_timeout_seconds": in.OfferTimeoutSeconds,
			"max_wait_seconds": in.MaxWaitSeconds, "min_rating": in.MinRating, "min_qa_score": in.MinQAScore, "min_skill_level": in.MinSkillLevel,
			"require_certification": in.RequireCertification, "updated_at": s.Now(),
		}
		if err := tx.Model(&Brand{}).Where("id = ?", brandID).Updates(upd).Error; err != nil {
			return err
		}
		if err := s.audit(tx, actorID, brandID, "brand.settings_changed", "brand", brandID, changes); err != nil {
			return err
		}
		if err := tx.Where("id = ?", brandID).Take(&b).Error; err != nil {
			return err
		}
		out = &b
		return nil
	})
	return out, err
}

// diffSettings returns field → [before, after] for each changed setting.
func diffSettings(a, b BrandSettings) map[string][2]any {
	d := map[string][2]any{}
	add := func(k string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			d[k] = [2]any{x, y}
		}
	}
	add("name", a.Name, b.Name)
	add("languages", strings.Join(a.Languages, ","), strings.Join(b.Languages, ","))
	add("time_zone", a.TimeZone, b.TimeZone)
	add("pay_rate_minor", a.PayRateMinor, b.PayRateMinor)
	add("currency", a.Currency, b.Currency)
	add("offer_timeout_seconds", a.OfferTimeoutSeconds, b.OfferTimeoutSeconds)
	add("max_wait_seconds", a.MaxWaitSeconds, b.MaxWaitSeconds)
	add("min_rating", a.MinRating, b.MinRating)
	add("min_qa_score", a.MinQAScore, b.MinQAScore)
	add("min_skill_level", a.MinSkillLevel, b.MinSkillLevel)
	add("require_certification", a.RequireCertification, b.RequireCertification)
	return d
}

// Skills lists a brand's skill catalogue by name.
func (s *Store) Skills(ctx context.Context, brandID string) ([]BrandSkill, error) {
	var out []BrandSkill
	return out, s.DB.WithContext(ctx).Where("brand_id = ?", brandID).Order("slug").Find(&out).Error
}

// AddSkill adds a skill to the catalogue; its slug is derived from the name.
func (s *Store) AddSkill(ctx context.Context, actorID, brandID, name string) (*BrandSkill, error) {
	v := &ValidationError{}
	name = checkText(v, "skill", name, true, MaxSkillNameLen)
	slug := Slugify(name)
	if name != "" && slug == "" {
		v.Add("skill", "must contain at least one letter or digit")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	var sk *BrandSkill
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&BrandSkill{}).Where("brand_id = ?", brandID).Count(&n).Error; err != nil {
			return err
		}
		if n >= MaxSkills {
			return Invalid("skill", fmt.Sprintf("a catalogue holds at most %d skills", MaxSkills))
		}
		sk = &BrandSkill{ID: NewID(), BrandID: brandID, Slug: slug, Name: name, CreatedAt: s.Now()}
		if err := tx.Create(sk).Error; err != nil {
			if isUniqueViolation(err) {
				return Invalid("skill", "“"+slug+"” is already in the catalogue")
			}
			return err
		}
		return s.audit(tx, actorID, brandID, "brand.skill_added", "skill", sk.ID, map[string]string{"slug": slug, "name": name})
	})
	return sk, err
}

// RemoveSkill removes a skill from the brand's catalogue.
func (s *Store) RemoveSkill(ctx context.Context, actorID, brandID, skillID string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		var sk BrandSkill
		if err := tx.Where("id = ? AND brand_id = ?", skillID, brandID).Take(&sk).Error; err != nil {
			return notFound(err, "skill")
		}
		if err := tx.Delete(&BrandSkill{}, "id = ?", sk.ID).Error; err != nil {
			return err
		}
		return s.audit(tx, actorID, brandID, "brand.skill_removed", "skill", sk.ID, map[string]string{"slug": sk.Slug})
	})
}

// APIKeyPrefix starts every bot API key, so a leaked key is recognisable.
const APIKeyPrefix = "hk_"

// digestKey is the stored form of an API key: keys carry 256 bits of
// randomness, so a fast digest is safe and keeps every API call cheap.
// APIKeyDigest is the digest under which a key is stored, for caching a
// key without keeping it in clear.
func APIKeyDigest(key string) string { return digestKey(key) }

func digestKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// CreateAPIKey makes a new key for the brand and returns it in clear; it is
// shown once and only its digest is kept.
func (s *Store) CreateAPIKey(ctx context.Context, actorID, brandID, name string) (string, *APIKey, error) {
	v := &ValidationError{}
	name = checkText(v, "name", name, true, MaxAPIKeyNameLen)
	if err := v.Err(); err != nil {
		return "", nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	key := APIKeyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	k := &APIKey{ID: NewID(), BrandID: brandID, Name: name, Prefix: key[:len(APIKeyPrefix)+6], Digest: digestKey(key), CreatedAt: s.Now()}
	if actorID != "" {
		k.CreatedBy = &actorID
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(k).Error; err != nil {
			return err
		}
		return s.audit(tx, actorID, brandID, "brand.api_key_created", "api_key", k.ID, map[string]string{"name": name, "prefix": k.Prefix})
	})
	if err != nil {
		return "", nil, err
	}
	return key, k, nil
}

// APIKeys lists a brand's keys, newest first, revoked ones included.
func (s *Store) APIKeys(ctx context.Context, brandID string) ([]APIKey, error) {
	var out []APIKey
	return out, s.DB.WithContext(ctx).Where("brand_id = ?", brandID).Order("created_at DESC").Find(&out).Error
}

// RevokeAPIKey revokes one of the brand's keys. Another brand's key is
// ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, actorID, brandID, keyID string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		var k APIKey
		if err := tx.Where("id = ? AND brand_id = ?", keyID, brandID).Take(&k).Error; err != nil {
			return notFound(err, "api key")
		}
		if k.RevokedAt != nil {
			return nil
		}
		if err := tx.Model(&APIKey{}).Where("id = ?", k.ID).Update("revoked_at", s.Now()).Error; err != nil {
			return err
		}
		return s.audit(tx, actorID, brandID, "brand.api_key_revoked", "api_key", k.ID, map[string]string{"name": k.Name, "prefix": k.Prefix})
	})
}

// BrandByAPIKey returns the brand a live key belongs to, or ErrUnauthorized.
func (s *Store) BrandByAPIKey(ctx context.Context, key string) (*Brand, *APIKey, error) {
	k, err := s.APIKeyOf(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	b, err := s.Brand(ctx, k.BrandID)
	if err != nil {
		return nil, nil, err
	}
	return b, k, nil
}

// APIKeyOf returns the live (not revoked) key a bot presented; an unknown
// or revoked one is ErrUnauthorized.
func (s *Store) APIKeyOf(ctx context.Context, key string) (*APIKey, error) {
	if !strings.HasPrefix(key, APIKeyPrefix) || len(key) > 100 {
		return nil, fmt.Errorf("api key: %w", ErrUnauthorized)
	}
	var k APIKey
	err := s.DB.WithContext(ctx).Where("digest = ? AND revoked_at IS NULL", digestKey(key)).Take(&k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("api key: %w", ErrUnauthorized)
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// InvitationTTL is how long an invitation link stays valid.
const InvitationTTL = 7 * 24 * time.Hour

// CreateInvitation invites someone to the brand's team with a role.
func (s *Store) CreateInvitation(ctx context.Context, actorID, brandID, email, role string) (*Invitation, error) {
	v := &ValidationError{}
	email = checkEmail(v, "email", email)
	if role != RoleOwner && role != RoleReviewer {
		v.Add("role", "choose owner or reviewer")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.Now()
	inv := &Invitation{ID: NewID(), BrandID: brandID, Email: email, Role: role, CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}
	if actorID != "" {
		inv.InvitedBy = &actorID
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		err := tx.Table("brand_members").Joins("JOIN users ON users.id = brand_members.user_id").
			Where("brand_members.brand_id = ? AND users.email = ?", brandID, email).Count(&n).Error
		if err != nil {
			return err
		}
		if n > 0 {
			return Invalid("email", "is already on the team")
		}
		if err := tx.Create(inv).Error; err != nil {
			return err
		}
		return s.audit(tx, actorID, brandID, "brand.teammate_invited", "invitation", inv.ID, map[string]string{"email": email, "role": role})
	})
	return inv, err
}

// Invitations lists a brand's invitations, newest first.
func (s *Store) Invitations(ctx context.Context, brandID string) ([]Invitation, error) {
	var out []Invitation
	return out, s.DB.WithContext(ctx).Where("brand_id = ?", brandID).Order("created_at DESC").Find(&out).Error
}

// Invitation returns one invitation by id.
func (s *Store) Invitation(ctx context.Context, id string) (*Invitation, error) {
	var inv Invitation
	if err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&inv).Error; err != nil {
		return nil, notFound(err, "invitation")
	}
	return &inv, nil
}

// RevokeInvitation withdraws a pending invitation of the brand.
func (s *Store) RevokeInvitation(ctx context.Context, actorID, brandID, id string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Invitation{}).Where("id = ? AND brand_id = ? AND accepted_at IS NULL AND revoked_at IS NULL", id, brandID).Update("revoked_at", s.Now())
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("invitation: %w", ErrNotFound)
		}
		return s.audit(tx, actorID, brandID, "brand.invitation_revoked", "invitation", id, nil)
	})
}

// AcceptInvitation joins the invited person to the brand. Someone new gives a
// name and password and gets an account; an existing brand account must
// give its password. The invitation is claimed with one conditional update,
// so it works exactly once.
func (s *Store) AcceptInvitation(ctx context.Context, id, displayName, password string) (*User, error) {
	// Passwords are checked or hashed before the transaction: bcrypt is
	// slow and must not hold the write lock.
	inv, err := s.Invitation(ctx, id)
	if err != nil {
		return nil, err
	}
	var existing User
	err = s.DB.WithContext(ctx).Where("email = ?", inv.Email).Take(&existing).Error
	hash := ""
	switch {
	case err == nil:
		if existing.Kind != KindBrand {
			return nil, Invalid("email", "this email belongs to an account that cannot join a brand")
		}
		if bcryptCompare(existing.PasswordHash, password) != nil {
			return nil, Invalid("password", "is not the password of "+inv.Email)
		}
	case errors.Is(err, gorm.ErrRecordNotFound):
		v := &ValidationError{}
		displayName = checkText(v, "display_name", displayName, true, MaxNameLen)
		checkPassword(v, "password", password)
		if err := v.Err(); err != nil {
			return nil, err
		}
		if hash, err = s.hashPassword(password); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	var u *User
	err = s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		if err := tx.Where("id = ?", id).Take(inv).Error; err != nil {
			return notFound(err, "invitation")
		}
		if st := inv.State(now); st != "pending" {
			return Invalid("invitation", "this invitation is "+st)
		}
		if hash == "" {
			u = &existing
		} else {
			u = &User{Email: inv.Email, DisplayName: displayName, Kind: KindBrand}
			if err := s.createUser(tx, u, hash); err != nil {
				return err
			}
		}
		res := tx.Model(&Invitation{}).Where("id = ? AND accepted_at IS NULL AND revoked_at IS NULL", inv.ID).Update("accepted_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return Invalid("invitation", "this invitation was already used")
		}
		if err := tx.Create(&BrandMember{BrandID: inv.BrandID, UserID: u.ID, Role: inv.Role, CreatedAt: now}).Error; err != nil {
			if isUniqueViolation(err) {
				return Invalid("email", "is already on the team")
			}
			return err
		}
		return s.audit(tx, u.ID, inv.BrandID, "brand.teammate_joined", "user", u.ID, map[string]string{"email": u.Email, "role": inv.Role})
	})
	return u, err
}
