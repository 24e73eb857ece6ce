package app

import (
	"sync"
	"time"

	"github.com/handoffhq/handoff/matching"
	"github.com/handoffhq/handoff/models"
)

// lineFresh is how old the line may be and still place a conversation:
// the sweep reads it every second, so an older one means this instance
// has not swept lately (another held the sweep's lock, or it is starting).
const lineFresh = 3 * time.Second

// queueLine is every brand's waiting conversations in dispatch order, as
// this instance's sweep last read them (publishQueues). The database
// counts a place in line only up to models.PlaceCountLimit; a place past
// that ("at least PlaceCountLimit+1") is refined here by a binary search,
// so a long line costs no walk along it per escalation or hello.
type queueLine struct {
	mu      sync.Mutex
	at      time.Time
	byBrand map[string][]matching.Conversation // each sorted by matching.SortQueue
}

// set replaces the line with the one read at at; the caller gives up the
// slices.
func (l *queueLine) set(at time.Time, byBrand map[string][]matching.Conversation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at, l.byBrand = at, byBrand
}

// refine returns the place of c, counted as place by the database: place
// itself when the count was exact, else its place in the line when the
// line is fresh and puts it further back. A conversation that joined
// since the line was read is placed among those that were in it then.
func (l *queueLine) refine(now time.Time, c matching.Conversation, place int) int {
	if place <= models.PlaceCountLimit {
		return place
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byBrand == nil || now.Sub(l.at) > lineFresh {
		return place
	}
	return max(place, matching.Ahead(l.byBrand[c.BrandID], c)+1)
}
