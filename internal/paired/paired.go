// Package paired compares two ways of doing the same work by the paired
// method, for the benchmarks of this module and of bench/.
package paired

import (
	"flag"
	"runtime"
	"slices"
	"testing"
	"time"
)

// The paired method compares two ways of doing the same work on a shared,
// noisy machine. Sequential runs of two benchmarks (-count medians) swing from
// 0.7x to 1.4x here, because the load of the other tenants changes between
// them. Compare instead runs the two sides in short alternating blocks in one
// process, so that both see the same load within a pair, and reports the
// median of the per-pair time ratios.
//
// One benchmark iteration is one pair: a block of the SDK's operations and a
// block of the baseline's, in alternating order (SDK first in even pairs,
// baseline first in odd ones). Run it with a fixed number of pairs:
//
//	go test -run '^$' -bench 'Paired' -benchtime 31x
//
// Metrics (the last line of each benchmark is the one to read):
//
//	ratio             median of SDK time / baseline time over the pairs
//	ratio-p25/-p75    the quartiles of those ratios, to show the spread
//	ns/op, base-ns/op median time per operation of the SDK / the baseline
//	sdk-allocs/op, sdk-B/op  allocations and bytes per SDK operation (mean over all blocks)
//	base-allocs/op, base-B/op  the same for the baseline
//
// Allocations come from runtime.MemStats, so they count every goroutine of
// the process: against a loopback server they include the server's own
// allocations, which are the same on both sides.

// pairedBlock is how long one block of operations should take.
var pairedBlock = flag.Duration("paired.block", 10*time.Millisecond, "duration of one block of the paired method")

// pairedSide accumulates the blocks of one side.
type pairedSide struct {
	perOp  []float64 // ns per operation, one per block
	ops    uint64
	allocs uint64
	bytes  uint64
}

// run times one block of n operations of f.
func (s *pairedSide) run(f func(n int), n int) float64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	f(n)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	perOp := float64(elapsed.Nanoseconds()) / float64(n)
	s.perOp = append(s.perOp, perOp)
	s.ops += uint64(n)
	s.allocs += after.Mallocs - before.Mallocs
	s.bytes += after.TotalAlloc - before.TotalAlloc
	return perOp
}

// Compare compares sdk with base, each a function that does n operations, by
// the paired method: b.N pairs of blocks of the same number of operations.
func Compare(b *testing.B, sdk, base func(n int)) {
	b.Helper()
	n := pairedBlockSize(sdk, base)
	var s, r pairedSide
	ratios := make([]float64, 0, b.N)
	runtime.GC()
	b.ResetTimer()
	for i := range b.N {
		var ts, tr float64
		if i%2 == 0 {
			ts = s.run(sdk, n)
			tr = r.run(base, n)
		} else {
			tr = r.run(base, n)
			ts = s.run(sdk, n)
		}
		ratios = append(ratios, ts/tr)
	}
	b.StopTimer()
	b.ReportMetric(quantile(ratios, 0.5), "ratio")
	b.ReportMetric(quantile(ratios, 0.25), "ratio-p25")
	b.ReportMetric(quantile(ratios, 0.75), "ratio-p75")
	b.ReportMetric(quantile(s.perOp, 0.5), "ns/op")
	b.ReportMetric(quantile(r.perOp, 0.5), "base-ns/op")
	b.ReportMetric(float64(s.allocs)/float64(s.ops), "sdk-allocs/op")
	b.ReportMetric(float64(r.allocs)/float64(r.ops), "base-allocs/op")
	b.ReportMetric(float64(s.bytes)/float64(s.ops), "sdk-B/op")
	b.ReportMetric(float64(r.bytes)/float64(r.ops), "base-B/op")
}

// pairedBlockSize warms both sides up and returns how many operations make a
// block of about *pairedBlock on the slower side.
func pairedBlockSize(fs ...func(n int)) int {
	var slowest time.Duration // per operation
	for _, f := range fs {
		f(1) // warm up: connections, caches
		n := 1
		for {
			start := time.Now()
			f(n)
			elapsed := time.Since(start)
			if elapsed >= *pairedBlock/4 || n >= 1<<20 {
				slowest = max(slowest, elapsed/time.Duration(n))
				break
			}
			n *= 2
		}
	}
	return max(1, int(*pairedBlock/max(slowest, 1)))
}

// quantile returns the q-quantile of xs (0 <= q <= 1), interpolating
// between the closest ranks; xs is not modified.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}
