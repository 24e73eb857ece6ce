package app

import (
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
)

var (
	authSecret1 = "k1:" + strings.Repeat("1", 32) + "-first-secret"
	authSecret2 = "k2:" + strings.Repeat("2", 32) + "-second-secret"
)

func authWithKeys(keys ...string) func(*Config) {
	return func(cfg *Config) { cfg.SecretKeys = keys }
}

func TestKeyRotation(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		a := newTestServer(t, db, authWithKeys(authSecret1))
		_, _, b, old := authOwnerSession(t, a, db, "Acme", "owner@acme.test")
		page := "/brand/" + b.ID
		if h, _ := authUnverified(t, old); h.Header["kid"] != "k1" {
			t.Fatalf("server A token kid = %v; want k1", h.Header["kid"])
		}

		// B signs with k2 and still verifies k1.
		srvB := newTestServer(t, db, authWithKeys(authSecret2, authSecret1))
		authExpectPage(t, authClientWithToken(srvB, old), page)
		cb := srvB.client()
		cb.login("owner@acme.test", testPassword)
		fresh := cb.cookie(sessionCookie)
		if h, _ := authUnverified(t, fresh); h.Header["kid"] != "k2" {
			t.Errorf("server B token kid = %v; want k2 (the first key signs)", h.Header["kid"])
		}
		authExpectPage(t, cb, page)
		authExpectSignedOut(t, authClientWithToken(a, fresh), page) // A does not know k2

		// C has dropped k1: its tokens no longer verify, k2's still do.
		c := newTestServer(t, db, authWithKeys(authSecret2))
		authExpectSignedOut(t, authClientWithToken(c, old), page)
		authExpectPage(t, authClientWithToken(c, fresh), page)
	})
}

// Without HANDOFF_SECRET_KEYS every instance on a database shares the key
// kept in it.
func TestDatabaseKeySharedByInstances(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		one := newTestServer(t, db)
		two := newTestServer(t, db)
		_, _, b, tok := authOwnerSession(t, one, db, "Acme", "owner@acme.test")
		authExpectPage(t, authClientWithToken(two, tok), "/brand/"+b.ID)
		c := two.client()
		c.login("owner@acme.test", testPassword)
		authExpectPage(t, authClientWithToken(one, c.cookie(sessionCookie)), "/brand/"+b.ID)

		// A server with its own keys does not accept the database key.
		other := newTestServer(t, db, authWithKeys(authSecret1))
		authExpectSignedOut(t, authClientWithToken(other, tok), "/brand/"+b.ID)
	})
}

func TestParseSecretKeys(t *testing.T) {
	s32 := strings.Repeat("s", 32)
	t.Run("OK", func(t *testing.T) {
		r, err := ParseSecretKeys([]string{" k2:" + s32 + "x ", "", "k1:" + s32})
		if err != nil {
			t.Fatalf("ParseSecretKeys = %v; want nil", err)
		}
		if len(r.keys) != 2 || r.keys[0].ID != "k2" || r.keys[1].ID != "k1" {
			t.Fatalf("keys = %+v; want k2 then k1", r.keys)
		}
		if string(r.keys[0].Secret) != s32+"x" {
			t.Errorf("k2 secret = %q; want %q (trimmed, kid removed)", r.keys[0].Secret, s32+"x")
		}
	})
	t.Run("BareSecret", func(t *testing.T) {
		r, err := ParseSecretKeys([]string{s32})
		if err != nil {
			t.Fatalf("ParseSecretKeys(bare) = %v; want nil", err)
		}
		if id := r.keys[0].ID; !strings.HasPrefix(id, "env-") || len(id) != len("env-")+8 {
			t.Errorf("bare secret kid = %q; want env-<8 hex digits>", id)
		}
		again, _ := ParseSecretKeys([]string{s32})
		if again.keys[0].ID != r.keys[0].ID {
			t.Errorf("bare secret kid not stable: %q then %q", r.keys[0].ID, again.keys[0].ID)
		}
	})
	for _, tc := range []struct {
		name    string
		entries []string
	}{
		{"ErrNoKeys", nil},
		{"ErrOnlyBlank", []string{" ", ""}},
		{"ErrShort", []string{"k1:" + s32[:31]}},
		{"ErrShortBare", []string{s32[:31]}},
		{"ErrShortSecond", []string{"k1:" + s32, "k2:short"}},
		{"ErrDuplicateKid", []string{"k1:" + s32, "k1:" + s32 + "other"}},
		{"ErrDuplicateBare", []string{s32, s32}},
		{"ErrEmptyKid", []string{":" + s32}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := ParseSecretKeys(tc.entries); err == nil {
				t.Errorf("ParseSecretKeys(%q) = %+v, nil; want an error", tc.entries, r.keys)
			}
		})
	}
	t.Run("Exactly32", func(t *testing.T) {
		if _, err := ParseSecretKeys([]string{"k1:" + s32}); err != nil {
			t.Errorf("ParseSecretKeys(32-character secret) = %v; want nil", err)
		}
	})
}
