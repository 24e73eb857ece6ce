package app

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// authValidClaims is the claim set the server itself issues.
func authValidClaims(userID, sessionID string, now time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Audience:  jwt.ClaimStrings{tokenAudience},
		Subject:   userID,
		ID:        sessionID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
}

// authRawToken builds header.payload.signature by hand from JSON values.
func authRawToken(t testing.TB, header, payload any, sig string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %v: %v", v, err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(payload) + "." + sig
}

// authTamperSubject rewrites the sub claim of a signed token and keeps the
// original signature.
func authTamperSubject(t testing.TB, tok, sub string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts; want 3", tok, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("unmarshal payload: %v", err)
	}
	claims["sub"] = sub
	b, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

type authForgery struct {
	name string
	tok  string
}

// authForgeries returns tokens that must all be refused by a ring whose
// signing key is key, for a session sid of user uid; victim is another user.
func authForgeries(t testing.TB, key signingKey, uid, sid, victim, valid string, now time.Time) []authForgery {
	t.Helper()
	base := func() jwt.RegisteredClaims { return authValidClaims(uid, sid, now) }
	with := func(f func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := base()
		f(&c)
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate RSA key: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatalf("marshal RSA public key: %v", err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	// HS256 with the RSA public key as HMAC secret, labelled RS256: the
	// classic algorithm-confusion attack.
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, base())
	confused.Header["kid"], confused.Header["alg"] = key.ID, jwt.SigningMethodRS256.Alg()
	confusedTok, err := confused.SignedString(pubPEM)
	if err != nil {
		t.Fatalf("sign confused token: %v", err)
	}
	noneLib := authSign(t, jwt.SigningMethodNone, key.ID, jwt.UnsafeAllowNoneSignatureType, base())
	signed := strings.Split(valid, ".")

	return []authForgery{
		{"other secret same kid", authSign(t, jwt.SigningMethodHS256, key.ID, []byte("another secret, also 32 characters or more"), base())},
		{"alg none by hand", authRawToken(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID}, base(), "")},
		{"alg None by hand", authRawToken(t, map[string]any{"alg": "None", "typ": "JWT", "kid": key.ID}, base(), "")},
		{"alg none library", noneLib},
		{"alg none with real signature", authRawToken(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID}, base(), signed[2])},
		{"signature stripped", signed[0] + "." + signed[1] + "."},
		{"RS256 known kid", authSign(t, jwt.SigningMethodRS256, key.ID, rsaKey, base())},
		{"HS256 with RSA public key labelled RS256", confusedTok},
		{"HS256 with RSA public key", authSign(t, jwt.SigningMethodHS256, key.ID, pubPEM, base())},
		{"HS512 real secret", authSign(t, jwt.SigningMethodHS512, key.ID, key.Secret, base())},
		{"wrong iss", authSign(t, jwt.SigningMethodHS256, key.ID, key.Secret, with(func(c *jwt.RegisteredClaims) { c.Issuer = "evil" }))},
		{"no iss", authSign(t, jwt.SigningMethodHS256, key.ID, key.Secret, with(func(c *jwt.RegisteredClaims) { c.Issuer = "" }))},
		{"wrong aud", authSign(t, jwt.SigningMethodHS256, key.ID, key.Secret, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"customer"} }))},
		{"no aud", authSign(t, jwt.SigningMethodHS256, key.ID, key.Secret, with(func(c *jwt.RegisteredClaims) { c.Audience = nil }))},
		{"missing exp", authSign(t, jwt.SigningMethodHS256, key.ID, key.Secret, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }))},
		{"issued in the future", authSign(t, jwt.SigningMethodHS256, key.ID, key.Secret, with(func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) }))},
		{"unknown kid", authSign(t, jwt.SigningMethodHS256, "no-such-kid", key.Secret, base())},
		{"no kid", authSign(t, jwt.SigningMethodHS256, "", key.Secret, base())},
		{"no session id", authSign(t, jwt.SigningMethodHS256, key.ID, key.Secret, with(func(c *jwt.RegisteredClaims) { c.ID = "" }))},
		{"tampered sub", authTamperSubject(t, valid, victim)},
		{"garbage", "not-a-token"},
	}
}

func TestForgedSessionTokensAreSignedOut(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, owner, b, valid := authOwnerSession(t, ts, db, "Acme", "owner@acme.test")
		other, _ := mustBrand(t, db, "Globex", "owner@globex.test")
		_, claims := authUnverified(t, valid)
		page := "/brand/" + b.ID
		key := ts.srv.keys.keys[0]
		now := db.Clock.Now()

		// Controls: the real cookie, and a hand-built token with the
		// template claims and the real key, both open the page. So each
		// refusal below comes from the one thing the forgery changed.
		authExpectPage(t, authClientWithToken(ts, valid), page)
		authExpectPage(t, authClientWithToken(ts, authSign(t, jwt.SigningMethodHS256, key.ID, key.Secret, authValidClaims(owner.ID, claims.ID, now))), page)

		for _, f := range authForgeries(t, key, owner.ID, claims.ID, other.ID, valid, now) {
			t.Run(f.name, func(t *testing.T) {
				authExpectSignedOut(t, authClientWithToken(ts, f.tok), page)
			})
		}

		// A correctly signed token whose sub names someone other than the
		// session's user is refused too.
		t.Run("sub does not match session", func(t *testing.T) {
			tok, err := ts.srv.keys.Sign(&models.Session{ID: claims.ID, UserID: other.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			authExpectSignedOut(t, authClientWithToken(ts, tok), page)
		})
	})
}

func TestKeyRingVerifyRefusesForgeries(t *testing.T) {
	ring, err := ParseSecretKeys([]string{"k1:" + strings.Repeat("a", 40)})
	if err != nil {
		t.Fatalf("ParseSecretKeys: %v", err)
	}
	now := modeltest.Epoch
	uid, sid, victim := models.NewID(), models.NewID(), models.NewID()
	valid, err := ring.Sign(&models.Session{ID: sid, UserID: uid, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	got, err := ring.Verify(valid, now)
	if err != nil {
		t.Fatalf("Verify(own token) = %v; want nil", err)
	}
	if got.Subject != uid || got.ID != sid {
		t.Fatalf("Verify(own token) = sub %q jti %q; want %q %q", got.Subject, got.ID, uid, sid)
	}
	for _, f := range authForgeries(t, ring.keys[0], uid, sid, victim, valid, now) {
		if c, err := ring.Verify(f.tok, now); err == nil {
			t.Errorf("Verify(%s) = %+v, nil; want an error", f.name, c)
		} else if !errors.Is(err, models.ErrUnauthorized) {
			t.Errorf("Verify(%s) error = %v; want it to wrap ErrUnauthorized", f.name, err)
		}
	}
	if _, err := ring.Verify(valid, now.Add(time.Hour+time.Minute)); err == nil {
		t.Errorf("Verify(own token) a minute after exp = nil; want an error")
	}
}

func TestExpiredSessionTokensAreSignedOut(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, owner, b, valid := authOwnerSession(t, ts, db, "Acme", "owner@acme.test")
		_, claims := authUnverified(t, valid)
		page := "/brand/" + b.ID
		start := db.Clock.Now()
		sign := func(expires time.Time) string {
			t.Helper()
			tok, err := ts.srv.keys.Sign(&models.Session{ID: claims.ID, UserID: owner.ID, CreatedAt: start, ExpiresAt: expires})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			return tok
		}
		if want := start.Add(ts.srv.cfg.SessionTTL); !claims.ExpiresAt.Time.Equal(want) {
			t.Errorf("session token exp = %v; want sign-in time + SessionTTL = %v", claims.ExpiresAt.Time, want)
		}

		// The token's own exp: a token for a live session that ran out.
		short := sign(start.Add(time.Minute))
		authExpectPage(t, authClientWithToken(ts, short), page)
		db.Clock.Advance(2 * time.Minute)
		authExpectPage(t, authClientWithToken(ts, valid), page)
		authExpectSignedOut(t, authClientWithToken(ts, short), page)

		// The session row's expiry: a token still in date whose session
		// has run out is refused.
		long := sign(start.Add(10 * ts.srv.cfg.SessionTTL))
		db.Clock.Advance(ts.srv.cfg.SessionTTL)
		if _, err := ts.srv.keys.Verify(long, db.Clock.Now()); err != nil {
			t.Fatalf("Verify(long-lived token) = %v; want nil, so only the session row can refuse it", err)
		}
		authExpectSignedOut(t, authClientWithToken(ts, long), page)
		authExpectSignedOut(t, authClientWithToken(ts, valid), page)
	})
}
