package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/handoffhq/handoff/models"
)

const (
	customerAudience = "customer"
	// customerLinkTTL bounds a customer link even if its conversation is
	// never closed; the link stops working once the conversation closes.
	customerLinkTTL = 30 * 24 * time.Hour
)

// SignCustomer issues the customer's link token for one conversation.
func (r *KeyRing) SignCustomer(convID string, now time.Time) (string, error) {
	k := r.keys[0]
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: tokenIssuer, Audience: jwt.ClaimStrings{customerAudience}, Subject: convID,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(customerLinkTTL)),
	})
	t.Header["kid"] = k.ID
	return t.SignedString(k.Secret)
}

// VerifyCustomer checks a customer link token and returns its conversation.
func (r *KeyRing) VerifyCustomer(token string, now time.Time) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, r.keyFunc,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(customerAudience), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil || !models.ValidID(claims.Subject) {
		return "", fmt.Errorf("customer link: %w", models.ErrNotFound)
	}
	return claims.Subject, nil
}

// customerURL is the link the bot gives its customer.
func (s *Server) customerURL(convID string) string {
	tok, err := s.keys.SignCustomer(convID, s.store.Now())
	if err != nil {
		return ""
	}
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/c/" + tok
}
