package models

import (
	"fmt"
	"strconv"
	"strings"
)

// Currencies Handoff pays in, with their minor-unit exponent.
var Currencies = map[string]int{
	"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CHF": 2,
	"SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "BRL": 2, "MXN": 2, "INR": 2,
	"SGD": 2, "HKD": 2, "ZAR": 2, "JPY": 0,
}

// CurrencyCodes lists the supported codes in a stable order for forms.
var CurrencyCodes = []string{"USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "PLN", "BRL", "MXN", "INR", "SGD", "HKD", "ZAR", "JPY"}

// ParseMoney reads an amount in the major unit ("12.50") as minor units of
// currency, exactly, without floats.
func ParseMoney(s, currency string) (int64, error) {
	exp, ok := Currencies[currency]
	if !ok {
		return 0, fmt.Errorf("unknown currency %q", currency)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("amount is empty")
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(whole) > 9 || strings.IndexFunc(whole, notDigit) >= 0 || strings.IndexFunc(frac, notDigit) >= 0 || (hasDot && frac == "") {
		return 0, fmt.Errorf("%q is not an amount like 12.50", s)
	}
	if len(frac) > exp {
		return 0, fmt.Errorf("%s takes at most %d decimals", currency, exp)
	}
	frac += strings.Repeat("0", exp-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an amount", s)
	}
	return n, nil
}

// FormatMoney writes minor units in the major unit ("1250", "USD" → "12.50").
func FormatMoney(minor int64, currency string) string {
	exp := Currencies[currency]
	neg := minor < 0
	if neg {
		minor = -minor
	}
	s := strconv.FormatInt(minor, 10)
	if exp > 0 {
		for len(s) <= exp {
			s = "0" + s
		}
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func notDigit(r rune) bool { return r < '0' || r > '9' }
