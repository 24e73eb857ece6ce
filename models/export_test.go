package models

// The statements of the offer batch on PostgreSQL, for tests that run them
// by hand on a connection of their own, to stop between them.
var (
	LockOfferAgentsSQL     = lockOfferAgentsSQL
	CreateOffersSQL        = createOffersSQL
	CreateOffersRequeueSQL = createOffersRequeueSQL
)
