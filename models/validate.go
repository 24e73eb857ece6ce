package models

import (
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/language"
)

// Input limits, in characters unless said otherwise.
const (
	MaxNameLen        = 100
	MaxEmailLen       = 254
	MinPasswordLen    = 10
	MaxPasswordLen    = 72 // bcrypt reads no further
	MaxBioLen         = 1000
	MaxReasonLen      = 500
	MaxSkillNameLen   = 60
	MaxSkills         = 50
	MaxLanguages      = 20
	MaxAPIKeyNameLen  = 60
	MaxAgentSkills    = 20
	MaxPayRateMinor   = 100_000_00 // 100,000.00 in the major unit
	MinOfferTimeout   = 5
	MaxOfferTimeout   = 120
	MinMaxWaitSeconds = 30
	MaxMaxWaitSeconds = 86400
)

var slugRE = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// checkText trims s and checks it is present and at most max characters.
func checkText(v *ValidationError, field, s string, required bool, max int) string {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		v.Add(field, "must be valid text")
	case required && s == "":
		v.Add(field, "is required")
	case utf8.RuneCountInString(s) > max:
		v.Add(field, "must be at most "+strconv.Itoa(max)+" characters")
	case strings.ContainsAny(s, "\x00\r") || (max <= MaxNameLen && strings.ContainsAny(s, "\n\t")):
		v.Add(field, "must not contain control characters")
	}
	return s
}

// checkEmail normalises an email address and checks its form.
func checkEmail(v *ValidationError, field, s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		v.Add(field, "is required")
		return s
	}
	if len(s) > MaxEmailLen {
		v.Add(field, "must be at most "+strconv.Itoa(MaxEmailLen)+" characters")
		return s
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s[strings.IndexByte(s, '@')+1:], ".") {
		v.Add(field, "must be an email address like name@example.com")
	}
	return s
}

// checkPassword checks a new password's length.
func checkPassword(v *ValidationError, field, s string) {
	switch n := len(s); {
	case n == 0:
		v.Add(field, "is required")
	case utf8.RuneCountInString(s) < MinPasswordLen:
		v.Add(field, "must be at least "+strconv.Itoa(MinPasswordLen)+" characters")
	case n > MaxPasswordLen:
		v.Add(field, "must be at most "+strconv.Itoa(MaxPasswordLen)+" bytes")
	}
}

// CanonicalLanguage parses a BCP 47 tag and returns its canonical form.
func CanonicalLanguage(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 35 {
		return "", false
	}
	t, err := language.Parse(s)
	if err != nil || t == language.Und {
		return "", false
	}
	return t.String(), true
}

// checkLanguages parses a list of BCP 47 tags, dropping repeats.
func checkLanguages(v *ValidationError, field string, in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if strings.TrimSpace(s) == "" {
			continue
		}
		tag, ok := CanonicalLanguage(s)
		if !ok {
			v.Add(field, "“"+truncate(s, 40)+"” is not a language tag like en or pt-BR")
			return out
		}
		if !seen[tag] {
			seen[tag] = true
			out = append(out, tag)
		}
	}
	switch {
	case len(out) == 0:
		v.Add(field, "choose at least one language")
	case len(out) > MaxLanguages:
		v.Add(field, "at most "+strconv.Itoa(MaxLanguages)+" languages")
	}
	return out
}

// checkTimeZone checks an IANA time zone name.
func checkTimeZone(v *ValidationError, field, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		v.Add(field, "is required")
		return s
	}
	if len(s) > 64 {
		v.Add(field, "is not a time zone")
		return s
	}
	if _, err := time.LoadLocation(s); err != nil || s == "Local" {
		v.Add(field, "is not a time zone like Europe/Berlin")
	}
	return s
}

// Slugify turns a name into a URL slug ("Acme Support!" → "acme-support").
func Slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		default:
			if b.Len() > 0 && !dash {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
