package app

import (
	"io/fs"
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/static"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes registers every route, grouped by audience. Reading this function
// tells the whole surface of Handoff; roles are enforced here and nowhere
// else (requireKind, requireBrand).
func (s *Server) routes() {
	e := s.echo
	e.Use(s.baseMiddleware()...)

	// Probes and metrics: no session, no CSRF.
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/metrics", s.handleMetrics)
	e.GET("/debug/pprof/*", s.handleProfile)
	assets, _ := fs.Sub(static.FS, ".")
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticHandler(assets))))

	// Bot API: bearer key, JSON in and out, problem+json errors.
	e.GET("/api/openapi.yaml", s.handleOpenAPI)
	api := e.Group("/api/v1", middleware.BodyLimit("256K"), s.apiAuth)
	api.POST("/escalations", s.handleAPIEscalationCreate)
	api.GET("/conversations/:id", s.handleAPIConversationShow)
	api.POST("/conversations/:id/messages", s.handleAPIMessageCreate)
	api.POST("/conversations/:id/cancel", s.handleAPIConversationCancel)

	// Customers: the link from the bot is the credential.
	e.GET("/c/:token", s.handleCustomerPage, s.noReferrer)
	e.GET("/c/:token/ws", s.handleCustomerSocket)

	// Everything a browser uses: session + CSRF.
	web := e.Group("", s.loadSession, s.csrf)
	web.GET("/", s.handleHome)
	web.GET("/login", s.handleLoginShow)
	web.POST("/login", s.handleLoginSubmit)
	web.POST("/logout", s.handleLogout)
	web.GET("/signup", s.handleBrandSignupShow)
	web.POST("/signup", s.handleBrandSignupSubmit)
	web.GET("/apply", s.handleAgentApplyShow)
	web.POST("/apply", s.handleAgentApplySubmit)
	web.GET("/invite/:token", s.handleInviteShow)
	web.POST("/invite/:token", s.handleInviteAccept)

	// Brand app: /brand/:brand/… answers 404 to anyone not on that brand.
	web.GET("/brand", s.handleBrandIndex, s.requireKind(models.KindBrand))
	brand := web.Group("/brand/:brand", s.requireKind(models.KindBrand), s.requireBrand(models.RoleOwner, models.RoleReviewer))
	brand.GET("", s.handleBrandDashboard)
	brand.GET("/team", s.handleBrandTeam)
	brand.GET("/queue", s.handleBrandQueue)
	brand.GET("/ws", s.handleBrandSocket)
	brand.GET("/conversations/:conversation", s.handleBrandConversation)
	owner := brand.Group("", s.requireBrand(models.RoleOwner))
	owner.GET("/settings", s.handleBrandSettingsShow)
	owner.POST("/settings", s.handleBrandSettingsSave)
	owner.GET("/skills", s.handleBrandSkills)
	owner.POST("/skills", s.handleBrandSkillAdd)
	owner.POST("/skills/:skill/delete", s.handleBrandSkillRemove)
	owner.GET("/keys", s.handleBrandKeys)
	owner.POST("/keys", s.handleBrandKeyCreate)
	owner.POST("/keys/:key/revoke", s.handleBrandKeyRevoke)
	owner.POST("/team/invitations", s.handleBrandInvite)
	owner.POST("/team/invitations/:invitation/revoke", s.handleBrandInviteRevoke)

	// Agent app.
	agent := web.Group("/agent", s.requireKind(models.KindAgent), s.loadAgent)
	agent.GET("", s.handleAgentHome)
	agent.POST("/presence", s.handleAgentPresenceSave)
	agent.GET("/earnings", s.handleAgentEarnings)
	web.GET("/ws/agent", s.handleAgentSocket, s.requireKind(models.KindAgent), s.loadAgent)

	// Operator pages.
	admin := web.Group("/admin", s.requireKind(models.KindOperator))
	admin.GET("", s.handleAdminApplications)
	admin.GET("/agents", s.handleAdminAgents)
	admin.GET("/agents/:agent", s.handleAdminAgent)
	admin.POST("/agents/:agent/approve", s.handleAdminAgentApprove)
	admin.POST("/agents/:agent/reject", s.handleAdminAgentReject)
	admin.POST("/agents/:agent/suspend", s.handleAdminAgentSuspend)
	admin.GET("/audit", s.handleAdminAudit)
	admin.GET("/outbox", s.handleAdminOutbox)

	// Unknown paths get the real 404 page, with session for the navigation.
	web.RouteNotFound("/*", func(c echo.Context) error { return echo.ErrNotFound })
}

// staticHandler serves the embedded assets; URLs carry a content hash, so
// they can be cached for a year.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServer(http.FS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		files.ServeHTTP(w, r)
	})
}
