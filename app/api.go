package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// MaxAPIBody is the largest bot API request body (256 KiB).
const MaxAPIBody = 256 << 10

const ctxAPIBrand = "api_brand"

// apiAuth authenticates a bot by its bearer key and applies the per-key
// rate limit (429 with Retry-After past it).
func (s *Server) apiAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		key, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || key == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="handoff"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "Send your brand's API key as Authorization: Bearer <key>.")
		}
		// The key and its brand may be cfg.SnapshotTTL old (apiKey says
		// how a revocation stops it sooner).
		k, err := s.apiKey(c.Request().Context(), strings.TrimSpace(key))
		if errors.Is(err, models.ErrUnauthorized) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="handoff", error="invalid_token"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "The API key is unknown or revoked.")
		}
		if err != nil {
			return err
		}
		b, err := s.brand(c.Request().Context(), k.BrandID)
		if err != nil {
			return err
		}
		if blocked, wait := s.apiLimit.Blocked("key:"+k.ID, s.cfg.APIRate); blocked {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			return echo.NewHTTPError(http.StatusTooManyRequests,
				fmt.Sprintf("Rate limit of %s per API key reached (HANDOFF_API_RATE).", s.cfg.APIRate))
		}
		s.apiLimit.Hit("key:"+k.ID, s.cfg.APIRate)
		c.Set(ctxAPIBrand, b)
		return next(c)
	}
}

func apiBrand(c echo.Context) *models.Brand {
	b, _ := c.Get(ctxAPIBrand).(*models.Brand)
	return b
}

// decodeJSON reads a JSON body of at most MaxAPIBody bytes into dst:
// 413 when larger, 400 when malformed or of the wrong type (unknown fields
// are ignored, so bots can send more than this version reads).
func decodeJSON(c echo.Context, dst any) error {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "Send application/json.")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxAPIBody+1))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The body could not be read.")
	}
	if len(body) > MaxAPIBody {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("The body is larger than %d KiB.", MaxAPIBody>>10))
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Field %q must be a JSON %s.", te.Field, jsonKind(te.Type.Kind().String())))
		}
		return echo.NewHTTPError(http.StatusBadRequest, "The body is not valid JSON.")
	}
	return nil
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "float"), strings.HasPrefix(k, "uint"):
		return "number"
	case k == "slice":
		return "array"
	case k == "struct", k == "map", k == "ptr":
		return "object"
	}
	return k
}

// apiConversationID reads the {id} of the path; an id that is not one of
// ours is 404 like an unknown one.
func apiConversationID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !models.ValidID(id) {
		return "", fmt.Errorf("conversation: %w", models.ErrNotFound)
	}
	return id, nil
}
