package main

import (
	"time"
	"unicode/utf8"
)

// A list fits a terminal of listWidth columns: the widest cells are cut
// short with "…" until it does. --json prints every value whole.
const (
	listWidth = 100
	listGap   = 2 // spaces between columns
	// minCut is the narrowest a column is cut to, unless its header is
	// wider.
	minCut = 8
)

// wholeColumns are never cut: identifiers to copy into the next command,
// times, and short fixed words.
var wholeColumns = map[string]bool{
	"ID": true, "KID": true, "USERNAME": true, "SUBJECT": true, "STATUS": true, "ALG": true, "VERIFIED": true,
	"TIME": true, "TYPE": true, "WHEN": true, "CREATED": true, "STARTS": true, "EXPIRES": true, "SIGNED IN": true, "LAST SEEN": true,
	"ACTIVATES": true, "SUPERSEDED": true, "RETIRED": true, "REVOKED": true, "REMEMBERED UNTIL": true,
}

// fitColumns cuts the cells of rows (rows[0] is the header) so that the
// table, with gap spaces between its columns, is at most width wide. Only
// columns not in wholeColumns are cut, the widest first.
func fitColumns(rows [][]string, width, gap int) {
	if len(rows) == 0 {
		return
	}
	header := rows[0]
	widths := make([]int, len(header))
	for _, r := range rows {
		for i, cell := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(cell))
			}
		}
	}
	floor := func(i int) int {
		if wholeColumns[header[i]] {
			return widths[i]
		}
		return max(minCut, utf8.RuneCountInString(header[i]))
	}
	total := gap * (len(widths) - 1)
	for _, w := range widths {
		total += w
	}
	for total > width {
		widest := -1
		for i, w := range widths {
			if w > floor(i) && (widest < 0 || w > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break // nothing left to cut: wider than width it stays
		}
		widths[widest]--
		total--
	}
	for _, r := range rows[1:] {
		for i, cell := range r {
			if i < len(widths) && utf8.RuneCountInString(cell) > widths[i] {
				r[i] = string([]rune(cell)[:widths[i]-1]) + "…"
			}
		}
	}
}

// fmtListTime is a time in a list: to the minute, in UTC. --json has it to
// the second, with its zone.
func fmtListTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

// fmtListDate is a day in a list, in UTC.
func fmtListDate(t time.Time) string { return t.UTC().Format("2006-01-02") }

func fmtOptionalListTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return fmtListTime(*t)
}
