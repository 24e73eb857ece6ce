// Package matching decides which online agent gets which waiting
// conversation: eligibility gates, quality bars, scoring, explanations and
// queue order. It is pure (no database, no web) so it can be table-tested;
// the dispatcher loop reaches the database through a small interface it
// declares.
package matching
