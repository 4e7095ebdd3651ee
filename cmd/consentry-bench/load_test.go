package main

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Each minute of a long run reports the p99 of the requests that started in
// it, whichever worker sent them: a stall in one minute must not hide in
// the whole run's figure, nor leak into the next minute's.
func TestIntervalP99GroupsLatenciesByTheirInterval(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var lat [][]time.Duration
	var slot [][]int32
	for w := range 2 {
		var l []time.Duration
		var s []int32
		// Interval 0: 1..100 ms; interval 1: 1000 ms from worker 1 only;
		// interval 2: nothing; interval 3: 7 ms.
		for i := 1 + w; i <= 100; i += 2 {
			l, s = append(l, ms(i)), append(s, 0)
		}
		if w == 1 {
			l, s = append(l, ms(1000)), append(s, 1)
		}
		l, s = append(l, ms(7)), append(s, 3)
		lat, slot = append(lat, l), append(slot, s)
	}
	got := intervalP99(lat, slot)
	want := []time.Duration{ms(99), ms(1000), 0, ms(7)}
	if !slices.Equal(got, want) {
		t.Errorf("intervalP99 = %v, want %v", got, want)
	}
}

// A run of N intervals reports N rows: the last tick falls on the deadline
// and must not be lost to the workers' end.
func TestEveryIntervalOfARunIsReported(t *testing.T) {
	const interval = 50 * time.Millisecond
	for round := range 10 {
		var rows int
		l := load{Workers: 4, Duration: 3 * interval, Interval: interval,
			Every: func(time.Duration, int64, int64) { rows++ }}
		l.run(t.Context(), "test", func(context.Context, int) error {
			time.Sleep(time.Millisecond)
			return nil
		})
		if rows != 3 {
			t.Fatalf("round %d: %d interval rows for a run of 3 intervals", round, rows)
		}
	}
}

// Most runs report no intervals.
func TestARunWithoutIntervals(t *testing.T) {
	l := load{Workers: 2, Duration: 20 * time.Millisecond}
	r := l.run(t.Context(), "test", func(context.Context, int) error {
		time.Sleep(time.Millisecond)
		return nil
	})
	if r.Requests == 0 || r.IntervalP99 != nil {
		t.Errorf("run without intervals: %d requests, interval p99s %v", r.Requests, r.IntervalP99)
	}
}
