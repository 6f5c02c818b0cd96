// Command fleet simulates a fleet of agent installers registering at once
// against a throttled API gateway, on loopback, and prints how it went.
//
// Each installer has its own cbr.Client with the default retry policy and
// its own deadline, and calls RegisterAgent once with its own agent ID. The
// installers start spread uniformly over -spread. One gateway on 127.0.0.1
// throttles every request (registrations and the ShowAgent that confirms one)
// with a token bucket of -rate requests a second and a burst of a tenth of
// that, and answers like CBR behind the Huawei Cloud API gateway. Variants:
//
//	plain   429 APIGW.0308 without Retry-After
//	ra1     429 with Retry-After: 1
//	faults  plain, and of the requests that pass the throttle, 2% answered 503
//	        and 1% dropped without an answer, after the registration is stored
//	aware   429 with a Retry-After that gives each caller its turn in a
//	        virtual queue of slots 1/rate apart (rounded up to whole seconds)
//
// Usage:
//
//	go run ./cmd/fleet -n 2000 -rate 100 -variant plain
//
// See docs/RELIABILITY.md for what it measured.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cbrsdk/cbr"
)

// outcome is what one installer saw.
type outcome struct {
	start, end time.Time
	err        error
}

func main() {
	n := flag.Int("n", 2000, "installers, 1 to 50000")
	rate := flag.Float64("rate", 100, "requests per second the gateway lets through, 1 to 10000")
	variant := flag.String("variant", "plain", "gateway: plain, ra1, faults or aware")
	deadline := flag.Duration("deadline", 5*time.Minute, "deadline of each installer's call, at most 15m")
	spread := flag.Duration("spread", time.Second, "installers start spread uniformly over this, at most 1m")
	keepAlive := flag.String("keepalive", "auto", "HTTP keep-alive: on, off, or auto (on when the file-descriptor limit allows a connection per installer)")
	quiet := flag.Bool("quiet", false, "no progress lines on stderr")
	flag.Parse()

	switch {
	case *n < 1 || *n > 50000:
		fail("-n must be from 1 to 50000")
	case *rate < 1 || *rate > 10000:
		fail("-rate must be from 1 to 10000")
	case !slices.Contains([]string{"plain", "ra1", "faults", "aware"}, *variant):
		fail("-variant must be plain, ra1, faults or aware")
	case *deadline <= 0 || *deadline > 15*time.Minute:
		fail("-deadline must be above 0 and at most 15m")
	case *spread < 0 || *spread > time.Minute:
		fail("-spread must be from 0 to 1m")
	case !slices.Contains([]string{"on", "off", "auto"}, *keepAlive):
		fail("-keepalive must be on, off or auto")
	}

	// Every installer holds a connection, and so does the gateway's end of
	// it: two descriptors an installer with keep-alive, besides a few for
	// the program.
	need := uint64(2**n + 256)
	limit, note := raiseFileLimit(need)
	keep := *keepAlive == "on" || *keepAlive == "auto" && limit >= need
	fmt.Printf("fleet: %d installers, gateway %s at %g requests/s (burst %g), deadline %v, start spread %v\n",
		*n, *variant, *rate, max(*rate/10, 1), *deadline, *spread)
	fmt.Printf("file descriptors: %s; keep-alive %s\n", note, onOff(keep))

	g := newGateway(*variant, *rate)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err.Error())
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 30 * time.Second}
	srv.SetKeepAlivesEnabled(keep)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	endpoint := "http://" + ln.Addr().String()

	out, wall := runFleet(endpoint, *n, *deadline, *spread, *quiet, g)
	report(g, out, wall, *n, *rate)
}

// runFleet starts n installers over spread and waits for all of them; it
// returns what each saw and the time from the first start to the last end.
func runFleet(endpoint string, n int, deadline, spread time.Duration, quiet bool, g *gateway) ([]outcome, time.Duration) {
	clients := make([]*cbr.Client, n)
	for i := range clients {
		c, err := cbr.NewClient(
			cbr.WithEndpoint(endpoint),
			cbr.WithProjectID("f841e01fd2b14e7fa41b6ae7aa6b0594"),
			cbr.WithCredentials(cbr.Token(fmt.Sprintf("token-of-installer-%05d", i))),
		)
		if err != nil {
			fail(err.Error())
		}
		clients[i] = c
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	var done sync.Map
	begin := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(float64(spread) * float64(i) / float64(n)))
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			o := &out[i]
			o.start = time.Now()
			_, o.err = clients[i].RegisterAgent(ctx, registration(i))
			o.end = time.Now()
			done.Store(i, true)
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	// Every call ends by its deadline; the margin is for a machine that
	// cannot keep up.
	bound := time.NewTimer(spread + deadline + 30*time.Second)
	defer bound.Stop()
	for {
		select {
		case <-finished:
			return out, time.Since(begin)
		case <-tick.C:
			if !quiet {
				ended := 0
				done.Range(func(any, any) bool { ended++; return true })
				g.mu.Lock()
				st := g.stats
				g.mu.Unlock()
				fmt.Fprintf(os.Stderr, "  %3.0fs: %d of %d calls ended; gateway: %d requests, %d admitted, %d throttled\n",
					time.Since(begin).Seconds(), ended, n, st.requests, st.admitted, st.throttled)
			}
		case <-bound.C:
			fail("the fleet did not end within its deadline and 30s: the machine cannot drive it")
		}
	}
}

// registration is installer i's registration.
func registration(i int) cbr.AgentRegister {
	return cbr.AgentRegister{
		AgentID:      fmt.Sprintf("489654f2-363b-4ebf-966a-%012d", i),
		HostName:     fmt.Sprintf("ecs-%05d", i),
		HostIP:       fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
		HostOS:       "linux",
		AgentVersion: "1.0.0",
		AgentType:    cbr.AgentTypeCloud,
	}
}

// report prints the outcome of a run.
func report(g *gateway, out []outcome, wall time.Duration, n int, rate float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var registered, lost, falseFailures, failed, dupAgents, dups int
	var posts, requests []float64
	var took []time.Duration
	errs := map[string]int{}
	for i, o := range out {
		rec := g.agents[registration(i).AgentID]
		if rec == nil {
			rec = &agentRecord{}
		}
		stored := rec.stored > 0
		switch {
		case o.err == nil && stored:
			registered++
			took = append(took, o.end.Sub(o.start))
		case o.err == nil:
			lost++
		case stored:
			falseFailures++
		default:
			failed++
		}
		if o.err != nil {
			errs[shorten(o.err.Error())]++
		}
		if rec.stored > 1 {
			dupAgents++
			dups += rec.stored - 1
		}
		posts = append(posts, float64(rec.posts))
		requests = append(requests, float64(rec.posts+rec.gets))
	}
	ideal := time.Duration(float64(n) / rate * float64(time.Second))
	st := g.stats
	fmt.Printf("registered %d of %d; lost %d; false failures %d; failed %d; duplicates %d (%d agents)\n",
		registered, n, lost, falseFailures, failed, dups, dupAgents)
	fmt.Printf("wall %.1fs, ideal %.1fs: %.2fx\n", wall.Seconds(), ideal.Seconds(), wall.Seconds()/ideal.Seconds())
	fmt.Printf("attempts (POSTs) per registration: mean %.2f, p99 %.0f, max %.0f\n", mean(posts), quantile(posts, 0.99), quantile(posts, 1))
	fmt.Printf("requests (POSTs and GETs) per registration: mean %.2f, p99 %.0f, max %.0f\n", mean(requests), quantile(requests, 0.99), quantile(requests, 1))
	if len(took) > 0 {
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		fmt.Printf("time to register: p50 %.1fs, p99 %.1fs, max %.1fs\n",
			took[len(took)/2].Seconds(), took[min(len(took)-1, len(took)*99/100)].Seconds(), took[len(took)-1].Seconds())
	}
	fmt.Printf("gateway: %d requests, %d admitted, %d throttled, %d answered 503 and %d dropped after taking effect, %d answered 404\n",
		st.requests, st.admitted, st.throttled, st.faults503, st.dropped, st.notFound)
	for e, k := range errs {
		fmt.Printf("error (%d installers): %s\n", k, e)
	}
	fmt.Printf("row: | %d | %g | %s | %d/%d | %d | %d | %d | %.1f s (%.2f×) | %.2f / %.0f / %.0f | %.2f |",
		n, rate, g.variant, registered, n, lost, falseFailures, dups, wall.Seconds(), wall.Seconds()/ideal.Seconds(),
		mean(posts), quantile(posts, 0.99), quantile(posts, 1), mean(requests))
	if len(took) > 0 {
		fmt.Printf(" %.1f s / %.1f s |", took[len(took)/2].Seconds(), took[min(len(took)-1, len(took)*99/100)].Seconds())
	}
	fmt.Println()
}

// shorten keeps an error's kind, not the agent it names, so that errors of
// many installers add up.
func shorten(s string) string {
	if i := strings.Index(s, "; agent "); i >= 0 {
		s = s[:i] + "; agent …"
	}
	if i := strings.Index(s, "; whether agent "); i >= 0 {
		s = s[:i] + "; whether agent … was registered is unknown"
	}
	if i := strings.Index(s, "request id "); i >= 0 {
		s = s[:i] + "request id …"
	}
	return s
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(max(len(xs), 1))
}

// quantile returns the q-quantile of xs (nearest rank), q in [0, 1].
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "fleet: "+msg)
	os.Exit(2)
}
