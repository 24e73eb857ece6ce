package models_test

import (
	"context"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
)

func TestMigrateTwiceIsNoop(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		applied, err := db.Store.Migrate(context.Background())
		if err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if len(applied) != 0 {
			t.Fatalf("second Migrate applied %v; want nothing", applied)
		}
		keys, err := db.Store.SigningKeys(context.Background())
		if err != nil || len(keys) != 1 {
			t.Fatalf("SigningKeys = %d keys, %v; want exactly 1", len(keys), err)
		}
	})
}
