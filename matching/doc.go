// Package matching decides which online agent gets which waiting
// conversation: eligibility gates, quality bars, scoring, explanations and
// queue order. It is pure (no database, no web) so it can be table-tested;
// the dispatcher loop reaches the database through a small interface it
// declares.
//
// The pure part takes the time as an argument and never reads a clock:
//
//   - SortQueue orders conversations for dispatch (priority, then wait).
//   - Rank takes one conversation, its brand's Rules and the candidates as
//     the dispatcher loaded them, and returns the eligible ones best first
//     (with score parts) and the rejected ones with a reason.
//   - Assign runs Rank greedily over a queue, giving each agent at most one
//     offer per batch; Relations carry the per-brand and per-conversation
//     facts (certificates, blocks, preferences, earlier offers).
//   - Result.Explain builds the Explanation stored on each offer.
//   - EstimateWait and Surge give the customer's wait estimate and the
//     surge bonus.
//
// Eligibility has two layers. Gates are never relaxed: approved and
// active, online, speaks the language, certified when the brand requires
// it, not blocked by the brand, able to receive Stripe transfers when the
// brand requires it, a free seat and no pending offer, and the re-offer
// rule (an agent is not offered the same conversation again until every
// other eligible agent has had it and ReofferCooldown has passed). Quality
// bars are the brand's (skill level, Bayesian rating, QA average, resolved
// count) and its ladder relaxes them as the conversation waits. Agents with
// no ratings or no QA scores pass those two bars.
//
// A note for brands: the rating bar compares the Bayesian rating, which
// starts at RatingPriorMean (4.0). With a bar above 4.0, an agent with no
// ratings passes, but after a first 5★ their rating is 4.17 and they fail
// until enough good ratings (from any brand) lift it over the bar; e.g. a
// 4.5 bar needs five 5★ ratings. Brands wanting proven agents should use
// MinResolved.
package matching
