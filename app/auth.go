package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/handoffhq/handoff/models"
)

const (
	tokenIssuer    = "handoff"
	tokenAudience  = "handoff-web"
	sessionCookie  = "handoff_session"
	minSecretBytes = 32
)

// signingKey is one HMAC key of the ring, named by kid in token headers.
type signingKey struct {
	ID     string
	Secret []byte
}

// KeyRing signs with its first key and verifies with any of them, so keys
// can be rotated: add the new key first, and drop the old one once the
// tokens it signed have expired.
type KeyRing struct {
	keys []signingKey
}

// ParseSecretKeys reads HANDOFF_SECRET_KEYS entries: "kid:secret" or a bare
// secret (its kid is derived from its digest). Secrets need 32 bytes or more.
func ParseSecretKeys(entries []string) (*KeyRing, error) {
	r := &KeyRing{}
	seen := map[string]bool{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		kid, secret, ok := strings.Cut(e, ":")
		if !ok {
			secret = e
			sum := sha256.Sum256([]byte(secret))
			kid = "env-" + hex.EncodeToString(sum[:4])
		}
		// An empty kid would match tokens that carry no kid at all.
		if kid == "" {
			return nil, errors.New("secret key with an empty id: write kid:secret or a bare secret")
		}
		if len(secret) < minSecretBytes {
			return nil, fmt.Errorf("secret key %q is shorter than %d characters", kid, minSecretBytes)
		}
		if seen[kid] {
			return nil, fmt.Errorf("secret key id %q appears twice", kid)
		}
		seen[kid] = true
		r.keys = append(r.keys, signingKey{ID: kid, Secret: []byte(secret)})
	}
	if len(r.keys) == 0 {
		return nil, errors.New("no secret keys given")
	}
	return r, nil
}

// keyRingFromStore uses the keys generated into the database at migrate.
func keyRingFromStore(ctx context.Context, st *models.Store) (*KeyRing, error) {
	ks, err := st.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, errors.New("the database has no signing key: run handoff migrate")
	}
	r := &KeyRing{}
	for _, k := range ks {
		r.keys = append(r.keys, signingKey{ID: k.ID, Secret: k.Secret})
	}
	return r, nil
}

// sessionClaims are the claims of a browser session token. The session id
// (jti) is checked against the sessions table on every request.
type sessionClaims struct {
	jwt.RegisteredClaims
}

// Sign issues a session token for the session.
func (r *KeyRing) Sign(sess *models.Session) (string, error) {
	k := r.keys[0]
	claims := sessionClaims{jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Audience:  jwt.ClaimStrings{tokenAudience},
		Subject:   sess.UserID,
		ID:        sess.ID,
		IssuedAt:  jwt.NewNumericDate(sess.CreatedAt),
		ExpiresAt: jwt.NewNumericDate(sess.ExpiresAt),
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = k.ID
	return t.SignedString(k.Secret)
}

// Verify checks a session token at time now and returns its claims. Only
// HS256 is accepted; iss, aud, exp and a known kid are required.
func (r *KeyRing) Verify(token string, now time.Time) (*sessionClaims, error) {
	var claims sessionClaims
	_, err := jwt.ParseWithClaims(token, &claims, r.keyFunc,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(5*time.Second),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, fmt.Errorf("session token: %v: %w", err, models.ErrUnauthorized)
	}
	if claims.ID == "" || claims.Subject == "" {
		return nil, fmt.Errorf("session token without session: %w", models.ErrUnauthorized)
	}
	return &claims, nil
}

// keyFunc finds the verification key named by the token's kid.
func (r *KeyRing) keyFunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	for _, k := range r.keys {
		if hmac.Equal([]byte(k.ID), []byte(kid)) {
			return k.Secret, nil
		}
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

// mac returns a short HMAC of msg under the signing key, for links such as
// invitations that must not be guessable but need no database secret.
func (r *KeyRing) mac(k signingKey, msg string) string {
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:27]
}

// SignLink returns "id.mac" for a link to id with the given purpose.
func (r *KeyRing) SignLink(purpose, id string) string {
	return id + "." + r.mac(r.keys[0], purpose+":"+id)
}

// VerifyLink checks a "id.mac" link token and returns id.
func (r *KeyRing) VerifyLink(purpose, token string) (string, bool) {
	id, sig, ok := strings.Cut(token, ".")
	if !ok || !models.ValidID(id) {
		return "", false
	}
	for _, k := range r.keys {
		if hmac.Equal([]byte(sig), []byte(r.mac(k, purpose+":"+id))) {
			return id, true
		}
	}
	return "", false
}
