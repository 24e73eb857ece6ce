// Package payouts holds the money rules: earnings, the double-entry ledger,
// the payout worker and the Stripe Connect adapter behind an interface
// declared here.
package payouts
