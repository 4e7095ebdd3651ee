package main

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errStop ends a worker without counting an error (codes ran out, every
// family of the worker broke).
var errStop = errors.New("stop")

// maxSamplesPerWorker bounds the latencies kept per worker (10 minutes at
// 10 000 requests per second in all would stay under it with 32 workers).
const maxSamplesPerWorker = 1 << 20

// maxIterationsPerWorker bounds each worker's loop besides the deadline.
const maxIterationsPerWorker = 50_000_000

// result is one operation's measurements.
type result struct {
	Op       string
	Workers  int
	Requests int
	Elapsed  time.Duration
	// Latencies of successful requests, sorted.
	Latencies []time.Duration
	Errors    map[string]int
	MaxRSS    int64
	// ServerCPU and BenchCPU are the user+system CPU time the server and
	// this process used during the timed phase.
	ServerCPU time.Duration
	BenchCPU  time.Duration
	Note      string
	Minutes   []interval
	// IntervalP99 is the 99th percentile latency of the successful
	// requests started in each Interval of a load with Every set.
	IntervalP99 []time.Duration
}

// interval is one minute of a long run.
type interval struct {
	End      time.Duration
	Requests int64
	Errors   int64
	DBSize   int64
	WALSize  int64
	RSS      int64
	P99      time.Duration
}

// load runs fn from workers goroutines until duration passes, ctx ends or
// every worker stopped; a request started before the deadline completes. fn performs exactly one timed request; returning
// errStop ends that worker.
type load struct {
	Workers  int
	Duration time.Duration
	// Every, when set, is called every Interval with the elapsed time and
	// the totals so far.
	Interval time.Duration
	Every    func(elapsed time.Duration, requests, errs int64)
	// ServerPID, when set, is the process whose CPU time is measured.
	ServerPID int
}

func (l load) run(ctx context.Context, op string, fn func(ctx context.Context, worker int) error) result {
	// Requests in flight at the deadline finish (each is bounded by
	// requestTimeout): cancelling them would count the cut as an error and
	// make the server log cancelled transactions.
	deadline := time.Now().Add(l.Duration)
	tickCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var requests, errs atomic.Int64
	lat := make([][]time.Duration, l.Workers)
	// slot[w][i] is the Interval in which lat[w][i]'s request started.
	slot := make([][]int32, l.Workers)
	perInterval := l.Every != nil && l.Interval > 0
	errMaps := make([]map[string]int, l.Workers)
	serverCPU0, benchCPU0 := processCPU(l.ServerPID), processCPU(os.Getpid())
	start := time.Now()
	tickerDone := make(chan struct{})
	reported := 0 // calls of Every; read after tickerDone
	if l.Every != nil && l.Interval > 0 {
		go func() {
			defer close(tickerDone)
			tick := time.NewTicker(l.Interval)
			defer tick.Stop()
			for {
				select {
				case <-tickCtx.Done():
					return
				case <-tick.C:
					l.Every(time.Since(start), requests.Load(), errs.Load())
					reported++
				}
			}
		}()
	} else {
		close(tickerDone)
	}
	var wg sync.WaitGroup
	for w := range l.Workers {
		wg.Go(func() {
			samples := make([]time.Duration, 0, 4096)
			var slots []int32
			em := map[string]int{}
			for range maxIterationsPerWorker {
				if ctx.Err() != nil || time.Now().After(deadline) {
					break
				}
				t0 := time.Now()
				err := fn(ctx, w)
				d := time.Since(t0)
				if errors.Is(err, errStop) {
					break
				}
				if err != nil && ctx.Err() != nil {
					break // interrupted: not the server's fault
				}
				requests.Add(1)
				if err != nil {
					errs.Add(1)
					em[errorKey(err)]++
					continue
				}
				if len(samples) < maxSamplesPerWorker {
					samples = append(samples, d)
					if perInterval {
						slots = append(slots, int32(t0.Sub(start)/l.Interval))
					}
				}
			}
			lat[w], slot[w], errMaps[w] = samples, slots, em
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-tickerDone
	// The last interval ends at the deadline, and its tick can lose the race
	// with the workers' end (elapsed, counted from a later start than the
	// deadline, may fall a hair short of it: hence the rounding).
	if perInterval && reported < int(min(l.Duration, elapsed+l.Interval/2)/l.Interval) {
		l.Every(elapsed, requests.Load(), errs.Load())
	}
	r := result{Op: op, Workers: l.Workers, Requests: int(requests.Load()), Elapsed: elapsed, Errors: map[string]int{},
		ServerCPU: processCPU(l.ServerPID) - serverCPU0, BenchCPU: processCPU(os.Getpid()) - benchCPU0}
	for w := range l.Workers {
		r.Latencies = append(r.Latencies, lat[w]...)
		for k, n := range errMaps[w] {
			r.Errors[k] += n
		}
	}
	slices.Sort(r.Latencies)
	if perInterval {
		r.IntervalP99 = intervalP99(lat, slot)
	}
	return r
}

// intervalP99 returns the 99th percentile of the latencies in each interval
// (slot[w][i] is the interval of lat[w][i]).
func intervalP99(lat [][]time.Duration, slot [][]int32) []time.Duration {
	var byInterval [][]time.Duration
	for w := range lat {
		for i, d := range lat[w] {
			k := int(slot[w][i])
			for len(byInterval) <= k {
				byInterval = append(byInterval, nil)
			}
			byInterval[k] = append(byInterval[k], d)
		}
	}
	p99 := make([]time.Duration, len(byInterval))
	for k, ds := range byInterval {
		slices.Sort(ds)
		p99[k] = percentile(ds, 99)
	}
	return p99
}

// errorKey names an error in the table: the HTTP status, or "transport".
func errorKey(err error) string {
	var se *statusError
	if errors.As(err, &se) {
		return strconv.Itoa(se.Status)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "transport"
}

// percentile returns the p-th percentile (0..100) of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// rssSampler samples the server's VmRSS every second and keeps the maximum,
// overall and since the last Reset.
type rssSampler struct {
	pid     int
	overall atomic.Int64
	window  atomic.Int64
	current atomic.Int64
}

func (s *rssSampler) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *rssSampler) sample() {
	rss, err := procStatus(s.pid, "VmRSS")
	if err != nil {
		return
	}
	s.current.Store(rss)
	for _, m := range []*atomic.Int64{&s.overall, &s.window} {
		for {
			old := m.Load()
			if rss <= old || m.CompareAndSwap(old, rss) {
				break
			}
		}
	}
}

// Reset starts a new window and returns the maximum of the one that ended.
func (s *rssSampler) Reset() int64 {
	s.sample()
	return s.window.Swap(s.current.Load())
}

// clockTicks is Linux's USER_HZ, the unit of CPU times in /proc/PID/stat
// (100 on every architecture Go supports there).
const clockTicks = 100

// processCPU returns the user+system CPU time process pid has used, or 0
// when it cannot be read (pid 0, another OS).
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after it are
	// space-separated, utime and stime being fields 14 and 15.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}
