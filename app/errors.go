package app

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// overloaded refuses a request the server cannot take in now; Retry-After
// says when to try again.
type overloaded struct {
	detail     string
	retryAfter int // seconds
}

func (o *overloaded) Error() string { return "overloaded: " + o.detail }

func asValidation(err error, ve **models.ValidationError) bool { return errors.As(err, ve) }

// statusOf maps a domain error to its HTTP status and a message safe to
// show. This is the one place that decides it; only 5xx are logged.
func statusOf(err error) (int, string) {
	var he *echo.HTTPError
	var ve *models.ValidationError
	var ol *overloaded
	switch {
	case errors.As(err, &ol):
		return http.StatusServiceUnavailable, ol.detail
	case errors.As(err, &he):
		msg, ok := he.Message.(string)
		if !ok || he.Code >= 500 {
			msg = http.StatusText(he.Code)
		}
		return he.Code, msg
	case errors.As(err, &ve):
		return http.StatusUnprocessableEntity, "The input is invalid."
	case errors.Is(err, models.ErrNotFound):
		return http.StatusNotFound, "We could not find that page."
	case errors.Is(err, models.ErrConflict):
		return http.StatusConflict, "That was already done, or changed meanwhile. Reload and try again."
	case errors.Is(err, models.ErrForbidden):
		return http.StatusForbidden, "You are not allowed to do that."
	case errors.Is(err, models.ErrUnauthorized):
		return http.StatusUnauthorized, "Please sign in."
	case errors.Is(err, models.ErrInvalid):
		return http.StatusUnprocessableEntity, "The input is invalid."
	}
	return http.StatusInternalServerError, "Something went wrong on our side."
}

// problem is an RFC 9457 problem document.
type problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []models.FieldError `json:"errors,omitempty"`
}

// handleError renders errors as problem+json for the API and as an HTML
// page for browsers, with the request id so support can find the log line.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := statusOf(err)
	var ol *overloaded
	if errors.As(err, &ol) {
		// Counted in metrics, not logged: under overload a log line each
		// would add to the load.
		c.Response().Header().Set("Retry-After", strconv.Itoa(ol.retryAfter))
	} else if status >= 500 {
		s.logger(c).Error("request failed", "err", err, "path", c.Request().URL.Path)
	}
	if status == http.StatusNotFound && msg == "Not Found" {
		msg = "We could not find that page."
	}
	var werr error
	if wantsJSON(c) {
		p := problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: msg, RequestID: requestID(c)}
		var ve *models.ValidationError
		if errors.As(err, &ve) {
			p.Errors = ve.Fields
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(status)
		werr = jsonEncode(c.Response(), p)
	} else if c.Request().Method == http.MethodHead {
		werr = c.NoContent(status)
	} else {
		page := "error"
		if status == http.StatusNotFound {
			page = "notfound"
		}
		v := s.newView(c, http.StatusText(status))
		v.Data["Status"], v.Data["Message"] = status, msg
		werr = s.render(c, status, page, v)
	}
	if werr != nil {
		s.logger(c).Warn("error page failed", "err", werr)
	}
}

func wantsJSON(c echo.Context) bool {
	r := c.Request()
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json")
}
