package matching

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
)

// SortQueue puts conversations in dispatch order: priority descending, then
// longest waiting (QueuedAt ascending; CreatedAt when QueuedAt is zero),
// then ID ascending. A database query doing the same orders by
// priority DESC, queued_at, id.
func SortQueue(convs []Conversation) {
	slices.SortStableFunc(convs, compareQueue)
}

// Ahead counts the conversations of queue, in dispatch order (SortQueue),
// that come before c: its place in that line, less one. c itself, when
// in queue, is not counted. It is a binary search, so a place in a long
// line costs no walk along it.
func Ahead(queue []Conversation, c Conversation) int {
	n, _ := slices.BinarySearchFunc(queue, c, compareQueue)
	return n
}

func compareQueue(a, b Conversation) int {
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	if c := a.queuedAt().Compare(b.queuedAt()); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// Defaults of EstimateWait when recent figures are missing.
const (
	DefaultHandleTime    = 5 * time.Minute
	DefaultOfferToAccept = 15 * time.Second
)

// EstimateWait estimates how long the conversation at position (1-based,
// in its brand's queue order) will wait before an agent accepts it.
//
//   - eligibleOnline: agents online who could take it (Result.EligibleOnline),
//     busy or not. With none the wait is unknown: ok is false and the API
//     shows null.
//   - freeSeats: their free seats now (Result.FreeSeats).
//   - avgHandle: recent mean handle time of one chat (0: DefaultHandleTime).
//   - avgOfferToAccept: recent mean time from offer to accept, declines and
//     expiries included (0: DefaultOfferToAccept).
//
// The model: the first freeSeats conversations are offered at once and wait
// about avgOfferToAccept. The others wait for seats to free up. With
// eligibleOnline agents each finishing a chat every avgHandle on average
// (exponential handle times, as in an M/M/c queue with every server busy),
// a seat frees every avgHandle/eligibleOnline, so the k-th conversation
// beyond the free seats waits k·avgHandle/eligibleOnline + avgOfferToAccept.
// The estimate grows with position, shrinks with more agents or free
// seats, and is rounded up to whole seconds. It ignores abandonments and
// agents coming online; its error against actual waits is measured.
func EstimateWait(position, eligibleOnline, freeSeats int, avgHandle, avgOfferToAccept time.Duration) (time.Duration, bool) {
	if eligibleOnline <= 0 {
		return 0, false
	}
	if avgHandle <= 0 {
		avgHandle = DefaultHandleTime
	}
	if avgOfferToAccept <= 0 {
		avgOfferToAccept = DefaultOfferToAccept
	}
	position = max(position, 1)
	freeSeats = max(freeSeats, 0)
	wait := float64(avgOfferToAccept)
	if k := position - freeSeats; k > 0 {
		wait += float64(k) * float64(avgHandle) / float64(eligibleOnline)
	}
	wait = math.Ceil(wait/float64(time.Second)) * float64(time.Second)
	if wait >= math.MaxInt64 {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(wait), true
}

// Surge returns the surge bonus (minor units) to add to an offer's pay:
// bonusMinor when the brand's waiting conversations per free eligible
// agent exceed threshold, else 0. threshold 0 (or less) disables surge.
// waiting counts the brand's queued conversations, the one being offered
// included; freeEligible the agents who could be offered it now (its
// Result.Eligible). Waiting conversations with no free agent at all count
// as above any threshold. The bonus is fixed on the offer when it is made.
func Surge(waiting, freeEligible int, threshold float64, bonusMinor int64) int64 {
	if !(threshold > 0) || bonusMinor <= 0 || waiting <= 0 {
		return 0
	}
	if freeEligible <= 0 || float64(waiting)/float64(freeEligible) > threshold {
		return bonusMinor
	}
	return 0
}
