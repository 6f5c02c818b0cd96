package cbr

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A model of cmd/fleet in virtual time, without the network: installers
// starting within a second, a token bucket of rate requests a second with a
// burst of a tenth of that, and the default policy's throttleWait between
// attempts. It checks that the wait math spreads crowds of different sizes
// (the goals of docs/RELIABILITY.md, with a margin) in milliseconds; the
// figures that count are cmd/fleet's, on the real client.

// fleetModel is the outcome of one modelled fleet.
type fleetModel struct {
	ratio    float64 // time until the last installer registered, over n/rate
	attempts float64 // attempts per installer, on average
}

// modelEvent is an installer's next attempt.
type modelEvent struct {
	at time.Duration
	i  int
}

type modelQueue []modelEvent

func (q modelQueue) Len() int           { return len(q) }
func (q modelQueue) Less(a, b int) bool { return q[a].at < q[b].at }
func (q modelQueue) Swap(a, b int)      { q[a], q[b] = q[b], q[a] }
func (q *modelQueue) Push(x any)        { *q = append(*q, x.(modelEvent)) }
func (q *modelQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// runFleetModel models n installers against a gateway of rate requests a
// second; wait is the wait after an installer's n-th throttling answer, given
// the time since it began.
func runFleetModel(wait func(n int, elapsed time.Duration) time.Duration, n int, rate float64) fleetModel {
	burst := rate / 10
	tokens, last := burst, time.Duration(0)
	start := make([]time.Duration, n)
	throttled := make([]int, n)
	q := &modelQueue{}
	for i := range n {
		start[i] = rand.N(time.Second)
		heap.Push(q, modelEvent{start[i], i})
	}
	var end time.Duration
	attempts := 0
	for q.Len() > 0 {
		e := heap.Pop(q).(modelEvent)
		attempts++
		tokens = min(burst, tokens+(e.at-last).Seconds()*rate)
		last = e.at
		if tokens >= 1 {
			tokens--
			end = max(end, e.at)
			continue
		}
		throttled[e.i]++
		heap.Push(q, modelEvent{e.at + wait(throttled[e.i], e.at-start[e.i]), e.i})
	}
	ideal := float64(n) / rate
	return fleetModel{ratio: end.Seconds() / ideal, attempts: float64(attempts) / float64(n)}
}

func TestThrottleWaitSpreadsFleetsOfEverySize(t *testing.T) {
	p := DefaultRetryPolicy()
	tests := []struct {
		n           int
		retryAfter  time.Duration
		ratio, atts float64 // at most, on average over the runs
	}{
		{500, -1, 2.5, 3},
		{2000, -1, 1.5, 4.5},
		{2000, time.Second, 1.5, 4.5},
		{4000, -1, 1.5, 6},
	}
	const runs = 3
	for _, tt := range tests {
		name := fmt.Sprintf("%d installers", tt.n)
		if tt.retryAfter >= 0 {
			name += fmt.Sprintf(", Retry-After %v", tt.retryAfter)
		}
		t.Run(name, func(t *testing.T) {
			var ratio, atts float64
			for range runs {
				m := runFleetModel(func(n int, elapsed time.Duration) time.Duration {
					return p.throttleWait(n, tt.retryAfter, elapsed)
				}, tt.n, 100)
				ratio += m.ratio / runs
				atts += m.attempts / runs
			}
			assert.Less(t, ratio, tt.ratio, "time to register them all, over the ideal")
			assert.Less(t, atts, tt.atts, "attempts per installer")
			// The crowd waits in the queue, but the gateway is never left idle
			// for long: it cannot be faster than the ideal.
			assert.GreaterOrEqual(t, ratio, 1.0)
		})
	}
}

func TestFullJitterByAttemptCountAloneMissesTheFleetGoals(t *testing.T) {
	// The same model with the classic backoff, full jitter below
	// min(60s, 1s·2ⁿ⁻¹), waited out to the end: the crowd ends long after
	// the ideal. This is why throttleWait grows with elapsed time instead.
	p := DefaultRetryPolicy()
	classic := runFleetModel(func(n int, _ time.Duration) time.Duration {
		return fullJitter(p.ThrottleMinWait, p.ThrottleMaxWait, n-1)
	}, 2000, 100)
	assert.Greater(t, classic.ratio, 1.8, "classic backoff, 2000 installers")
}
