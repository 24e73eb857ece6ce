package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/static"
	"github.com/handoffhq/handoff/templates"
	"github.com/labstack/echo/v4"
)

// views holds one parsed template set per page, all sharing the layout, so
// a missing or broken page fails at start-up, not at the first request.
type views struct {
	pages  map[string]*template.Template
	assets map[string]string // asset path → content hash, for cache busting
}

func loadViews() (*views, error) {
	v := &views{pages: map[string]*template.Template{}, assets: map[string]string{}}
	err := fs.WalkDir(static.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		b, err := fs.ReadFile(static.FS, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		v.assets[p] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, err
	}
	base, err := template.New("layout").Funcs(v.funcs()).ParseFS(templates.FS, "*.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	names, err := fs.Glob(templates.FS, "pages/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		t, err := template.Must(base.Clone()).ParseFS(templates.FS, n)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		v.pages[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	return v, nil
}

func (v *views) funcs() template.FuncMap {
	return template.FuncMap{
		"asset": func(p string) string {
			if h, ok := v.assets[p]; ok {
				return "/static/" + p + "?v=" + h
			}
			panic("unknown asset " + p)
		},
		"money": models.FormatMoney,
		"datetime": func(t any) string {
			switch x := t.(type) {
			case time.Time:
				return x.UTC().Format("2 Jan 2006 15:04 UTC")
			case *time.Time:
				if x == nil {
					return ""
				}
				return x.UTC().Format("2 Jan 2006 15:04 UTC")
			}
			return ""
		},
		"isodate": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"join":    strings.Join,
		"contains": func(list []string, s string) bool {
			for _, x := range list {
				if x == s {
					return true
				}
			}
			return false
		},
		"seq": func(from, to int) []int {
			var out []int
			for i := from; i <= to; i++ {
				out = append(out, i)
			}
			return out
		},
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
		"title": func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + s[1:]
		},
	}
}

// View is what every page template receives.
type View struct {
	Title     string
	User      *models.User
	Member    *models.BrandMember // in brand pages
	CSRF      string
	Flash     string
	RequestID string
	Path      string
	Form      map[string]string // values to show again after an error
	Errors    map[string]string // field → message
	Error     string            // a message for the whole form
	Data      map[string]any    // page-specific values
}

// Val returns the value of a form field to show again.
func (v *View) Val(field string) string { return v.Form[field] }

// Err returns the message for a field, or "".
func (v *View) Err(field string) string { return v.Errors[field] }

// Invalid returns "true" when the field has an error, for aria-invalid.
func (v *View) Invalid(field string) string {
	if _, ok := v.Errors[field]; ok {
		return "true"
	}
	return ""
}

// newView starts a page view for the request.
func (s *Server) newView(c echo.Context, title string) *View {
	return &View{
		Title:     title,
		User:      currentUser(c),
		Member:    member(c),
		CSRF:      csrfToken(c),
		Flash:     s.takeFlash(c),
		RequestID: requestID(c),
		Path:      c.Request().URL.Path,
		Form:      map[string]string{},
		Errors:    map[string]string{},
		Data:      map[string]any{},
	}
}

// render writes a page with a status.
func (s *Server) render(c echo.Context, status int, page string, v *View) error {
	t, ok := s.views.pages[page]
	if !ok {
		return fmt.Errorf("no page %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("render %s: %w", page, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// formError renders the page again with the user's input and the messages
// of a validation error, with status 422. Any other error is returned.
func (s *Server) formError(c echo.Context, page string, v *View, err error) error {
	var ve *models.ValidationError
	if !asValidation(err, &ve) {
		return err
	}
	for k, m := range ve.Map() {
		v.Errors[k] = m
	}
	v.Error = "Please correct the fields marked below."
	return s.render(c, http.StatusUnprocessableEntity, page, v)
}

const flashCookie = "handoff_flash"

// flash sets a one-time message shown on the next page.
func (s *Server) flash(c echo.Context, msg string) {
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode, MaxAge: 60})
}

func (s *Server) takeFlash(c echo.Context) string {
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	msg, err := url.QueryUnescape(ck.Value)
	if err != nil || len(msg) > 500 {
		return ""
	}
	return msg
}

// redirect answers a form post with 303 See Other.
func redirect(c echo.Context, to string) error { return c.Redirect(http.StatusSeeOther, to) }
