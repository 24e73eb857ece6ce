package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// dummyHashes holds, per bcrypt cost, the hash compared against when the
// email is unknown, so a failed login takes as long whether or not the
// account exists. It is made at the store's own cost (a hash at any other
// cost would make unknown emails measurably faster or slower) and on first
// use, not at package init, where it cost every importer a bcrypt run.
var dummyHashes sync.Map // cost int → []byte

func (s *Store) passwordCost() int {
	if s.PasswordCost == 0 {
		return bcrypt.DefaultCost
	}
	return s.PasswordCost
}

func (s *Store) dummyHash() []byte {
	cost := s.passwordCost()
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("handoff-no-such-user"), cost)
	actual, _ := dummyHashes.LoadOrStore(cost, h)
	return actual.([]byte)
}

func (s *Store) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.passwordCost())
	return string(h), err
}

// Authenticate returns the user with that email and password. Unknown email,
// wrong password and a suspended account all answer ErrUnauthorized.
func (s *Store) Authenticate(ctx context.Context, email, password string) (*User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var u User
	err := s.DB.WithContext(ctx).Where("email = ?", email).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return nil, fmt.Errorf("unknown email: %w", ErrUnauthorized)
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, fmt.Errorf("wrong password: %w", ErrUnauthorized)
	}
	if !u.Active() {
		return nil, fmt.Errorf("account suspended: %w", ErrUnauthorized)
	}
	return &u, nil
}

// User returns a user by id.
func (s *Store) User(ctx context.Context, id string) (*User, error) {
	var u User
	if err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&u).Error; err != nil {
		return nil, notFound(err, "user")
	}
	return &u, nil
}

// CreateSession opens a session for a user that lasts ttl.
func (s *Store) CreateSession(ctx context.Context, userID, ip, userAgent string, ttl time.Duration) (*Session, error) {
	now := s.Now()
	sess := &Session{ID: NewID(), UserID: userID, IP: truncate(ip, 64), UserAgent: truncate(userAgent, 255), CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.DB.WithContext(ctx).Create(sess).Error; err != nil {
		return nil, err
	}
	return sess, nil
}

// SessionUser returns a live session and its user. A revoked or expired
// session, or one whose user is suspended, answers ErrUnauthorized.
func (s *Store) SessionUser(ctx context.Context, sessionID string) (*User, *Session, error) {
	var sess Session
	err := s.DB.WithContext(ctx).Where("id = ? AND revoked_at IS NULL AND expires_at > ?", sessionID, s.Now()).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, fmt.Errorf("session: %w", ErrUnauthorized)
	}
	if err != nil {
		return nil, nil, err
	}
	u, err := s.User(ctx, sess.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, fmt.Errorf("session user: %w", ErrUnauthorized)
	}
	if err != nil {
		return nil, nil, err
	}
	if !u.Active() {
		return nil, nil, fmt.Errorf("session user suspended: %w", ErrUnauthorized)
	}
	return u, &sess, nil
}

// RevokeSession ends one session (logout).
func (s *Store) RevokeSession(ctx context.Context, sessionID string) error {
	return s.DB.WithContext(ctx).Model(&Session{}).Where("id = ? AND revoked_at IS NULL", sessionID).Update("revoked_at", s.Now()).Error
}

func revokeUserSessions(tx *gorm.DB, userID string, now time.Time) error {
	return tx.Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", userID).Update("revoked_at", now).Error
}

// createUser inserts a user with a password hash made before the
// transaction (bcrypt takes tens of milliseconds: inside a write
// transaction it would hold SQLite's lock that long). A taken email is a
// ValidationError on "email".
func (s *Store) createUser(tx *gorm.DB, u *User, hash string) error {
	now := s.Now()
	u.ID, u.PasswordHash, u.Status, u.CreatedAt, u.UpdatedAt = NewID(), hash, "active", now, now
	if err := tx.Create(u).Error; err != nil {
		if isUniqueViolation(err) {
			return Invalid("email", "an account with this email already exists")
		}
		return err
	}
	return nil
}

// EnsureOperator creates an operator account unless the email exists.
func (s *Store) EnsureOperator(ctx context.Context, email, name, password string) (*User, error) {
	var u *User
	hash, err := s.hashPassword(password)
	if err != nil {
		return nil, err
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		var existing User
		err := tx.Where("email = ?", strings.ToLower(email)).Take(&existing).Error
		if err == nil {
			u = &existing
			return nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		u = &User{Email: strings.ToLower(email), DisplayName: name, Kind: KindOperator}
		return s.createUser(tx, u, hash)
	})
	return u, err
}

func bcryptCompare(hash, password string) error {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
}
