package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFitColumns(t *testing.T) {
	rows := [][]string{
		{"ID", "NOTE", "SCOPE"},
		{"agr_0123456789abcdefghijkl", strings.Repeat("n", 80), "openid profile email offline_access"},
		{"agr_x", "short", "openid"},
	}
	fitColumns(rows, 60, 2)
	if rows[1][0] != "agr_0123456789abcdefghijkl" {
		t.Errorf("the ID column was cut: %q", rows[1][0])
	}
	total := 2 * 2
	for i := range rows[0] {
		w := 0
		for _, r := range rows {
			w = max(w, utf8.RuneCountInString(r[i]))
		}
		total += w
	}
	if total > 60 {
		t.Errorf("table is %d wide, want at most 60: %q", total, rows)
	}
	if !strings.HasSuffix(rows[1][1], "…") || !strings.HasSuffix(rows[1][2], "…") || rows[2][1] != "short" || rows[2][2] != "openid" {
		t.Errorf("cells %q; want the long ones cut with an ellipsis, the short ones whole", rows)
	}

	narrow := [][]string{{"A", "B"}, {"x", "y"}}
	fitColumns(narrow, 100, 2)
	if narrow[1][0] != "x" || narrow[1][1] != "y" {
		t.Errorf("a table that fits was changed: %q", narrow)
	}
}
