package models_test

import (
	"testing"

	"github.com/handoffhq/handoff/models"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		name     string
		in, cur  string
		want     int64
		wantFail bool
	}{
		{"OK", "12.50", "USD", 1250, false},
		{"OKOneDecimal", "12.5", "USD", 1250, false},
		{"OKWhole", "12", "USD", 1200, false},
		{"OKZero", "0", "EUR", 0, false},
		{"OKLeadingDot", ".05", "USD", 5, false},
		{"OKSpaces", " 7.25 ", "GBP", 725, false},
		{"OKLargest", "999999999.99", "USD", 99999999999, false},
		{"OKYen", "500", "JPY", 500, false},
		{"ErrTooManyDecimals", "12.505", "USD", 0, true},
		{"ErrExponent", "1e3", "USD", 0, true},
		{"ErrEmpty", "", "USD", 0, true},
		{"ErrBlank", "  ", "USD", 0, true},
		{"ErrYenDecimals", "5.0", "JPY", 0, true},
		{"ErrNegative", "-1.00", "USD", 0, true},
		{"ErrPlus", "+1.00", "USD", 0, true},
		{"ErrTrailingDot", "12.", "USD", 0, true},
		{"ErrTwoDots", "1.2.3", "USD", 0, true},
		{"ErrComma", "1,50", "EUR", 0, true},
		{"ErrThousands", "1,000.00", "USD", 0, true},
		{"ErrTooLarge", "1000000000", "USD", 0, true},
		{"ErrUnknownCurrency", "1.00", "XYZ", 0, true},
		{"ErrLowercaseCurrency", "1.00", "usd", 0, true},
		{"ErrCurrencySign", "$1.00", "USD", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := models.ParseMoney(tt.in, tt.cur)
			switch {
			case tt.wantFail && err == nil:
				t.Errorf("ParseMoney(%q, %s) = %d, nil; want an error", tt.in, tt.cur, got)
			case !tt.wantFail && err != nil:
				t.Errorf("ParseMoney(%q, %s) = %v; want %d", tt.in, tt.cur, err, tt.want)
			case got != tt.want:
				t.Errorf("ParseMoney(%q, %s) = %d; want %d", tt.in, tt.cur, got, tt.want)
			}
		})
	}
}

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		minor int64
		cur   string
		want  string
	}{
		{1250, "USD", "12.50"},
		{5, "USD", "0.05"},
		{0, "USD", "0.00"},
		{100, "EUR", "1.00"},
		{-1250, "USD", "-12.50"},
		{-5, "USD", "-0.05"},
		{500, "JPY", "500"},
		{99999999999, "USD", "999999999.99"},
	}
	for _, tt := range tests {
		if got := models.FormatMoney(tt.minor, tt.cur); got != tt.want {
			t.Errorf("FormatMoney(%d, %s) = %q; want %q", tt.minor, tt.cur, got, tt.want)
		}
	}
}

func TestMoneyRoundTrip(t *testing.T) {
	for _, cur := range models.CurrencyCodes {
		if _, ok := models.Currencies[cur]; !ok {
			t.Errorf("CurrencyCodes lists %s, missing from Currencies", cur)
		}
		for _, minor := range []int64{0, 1, 9, 10, 99, 100, 101, 1250, 123456, 99999999999} {
			if cur == "JPY" && minor > 999999999 {
				continue
			}
			s := models.FormatMoney(minor, cur)
			got, err := models.ParseMoney(s, cur)
			if err != nil || got != minor {
				t.Errorf("ParseMoney(FormatMoney(%d, %s) = %q) = %d, %v; want %d", minor, cur, s, got, err, minor)
			}
		}
	}
	if len(models.CurrencyCodes) != len(models.Currencies) {
		t.Errorf("len(CurrencyCodes) = %d; want len(Currencies) = %d", len(models.CurrencyCodes), len(models.Currencies))
	}
}
