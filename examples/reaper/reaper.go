package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cbrsdk/cbr"
)

// reaper is one run: what it listed, what it chose, what it did.
type reaper struct {
	c      *cbr.Client
	cfg    config
	now    time.Time // the ages of last activity are measured against it
	stderr io.Writer

	listed  int                   // agents listed
	recent  int                   // active within cfg.olderThan
	unknown int                   // no last activity reported: left alone
	targets []*target             // silent for longer than cfg.olderThan, by agent ID
	results [numberOfOutcomes]int // how many targets ended with each outcome
}

// target is an agent chosen to be uninstalled, and what became of it.
type target struct {
	agent   cbr.Agent
	outcome int
	err     error // of a failure
}

// The outcomes of a target.
const (
	wouldUninstall = iota // a dry run
	uninstalled
	failed
	activeAgain      // became active since the listing: left alone
	alreadyGone      // uninstalled or unregistered since the listing
	notAttempted     // the run ended before its turn
	numberOfOutcomes // not an outcome
)

// outcomeText is how the table writes each outcome.
var outcomeText = [numberOfOutcomes]string{
	wouldUninstall: "would uninstall",
	uninstalled:    "uninstalled",
	failed:         "FAILED",
	activeAgain:    "left alone: active again",
	alreadyGone:    "left alone: already gone",
	notAttempted:   "not attempted",
}

// collect lists every agent in the chosen statuses and picks the targets,
// before anything is changed.
//
// Listing first and acting afterwards is the point of this tool's shape.
// The API pages with offset and limit over the agents that match the
// filter at the moment each page is asked for. Uninstalling an agent during
// a listing filtered by status=normal takes it out of the filtered set: the
// agents after it move up, and those that move from the next page into one
// already read are never seen. A loop that uninstalls as it iterates thus
// leaves agents behind, silently (1,000 of 2,500 in a test with pages of
// 1,000). Whatever the iterator guarantees when the set changes under it,
// finishing the listing before changing anything is correct. Collecting
// costs memory for the agents' IDs and facts only, a few hundred bytes an
// agent.
func (r *reaper) collect(ctx context.Context) error {
	seen := make(map[string]bool)
	for _, status := range r.cfg.statuses {
		fmt.Fprintf(r.stderr, "reaper: listing %s agents\n", status)
		for a, err := range r.c.Agents(ctx, cbr.ListAgentsOptions{Status: status}) {
			if err != nil {
				return err
			}
			if seen[a.AgentID] { // it changed status between two listings
				continue
			}
			seen[a.AgentID] = true
			r.listed++
			if r.listed%1000 == 0 {
				fmt.Fprintf(r.stderr, "reaper: %d agents listed\n", r.listed)
			}
			switch {
			case a.LastActiveTime.IsZero():
				r.unknown++
			case r.silent(a) > r.cfg.olderThan:
				r.targets = append(r.targets, &target{agent: *a})
			default:
				r.recent++
			}
		}
	}
	slices.SortFunc(r.targets, func(a, b *target) int { return strings.Compare(a.agent.AgentID, b.agent.AgentID) })
	fmt.Fprintf(r.stderr, "reaper: %d agents listed: %d silent for over %v, %d active within it, %d of unknown activity (left alone)\n",
		r.listed, len(r.targets), r.cfg.olderThan, r.recent, r.unknown)
	return nil
}

// silent returns how long agent a has been silent.
func (r *reaper) silent(a *cbr.Agent) time.Duration { return r.now.Sub(a.LastActiveTime) }

// act uninstalls the targets, one after the other, or in a dry run marks
// them as what it would do; it returns the exit code. A failure does not
// stop the others, unless the credentials or permissions were refused or
// the run's deadline passed.
func (r *reaper) act(ctx context.Context) int {
	denied := false
	for i, t := range r.targets {
		switch {
		case !r.cfg.apply:
			t.outcome = wouldUninstall
		case denied || ctx.Err() != nil:
			t.outcome = notAttempted
		default:
			r.uninstall(ctx, t)
			detail := ""
			if t.err != nil {
				detail = ": " + t.err.Error()
			}
			fmt.Fprintf(r.stderr, "reaper: [%d/%d] %s: %s%s\n", i+1, len(r.targets), t.agent.AgentID, outcomeText[t.outcome], detail)
			denied = errors.Is(t.err, cbr.ErrUnauthorized) || errors.Is(t.err, cbr.ErrForbidden)
		}
		r.results[t.outcome]++
	}
	switch {
	case denied:
		return exitDenied
	case r.results[failed] > 0 || r.results[notAttempted] > 0:
		return exitFailed
	}
	return exitOK
}

// uninstall marks one target uninstalled, unless it changed since the
// listing: it is read again first, so that an agent that came back or was
// uninstalled by someone else meanwhile is left alone.
func (r *reaper) uninstall(ctx context.Context, t *target) {
	current, err := r.c.ShowAgent(ctx, t.agent.AgentID)
	switch {
	case errors.Is(err, cbr.ErrNotFound):
		t.outcome = alreadyGone
		return
	case err != nil:
		t.outcome, t.err = failed, err
		return
	case current.Status == cbr.AgentStatusUninstall:
		t.outcome = alreadyGone
		return
	case current.LastActiveTime.IsZero() || r.silent(current) <= r.cfg.olderThan:
		t.outcome = activeAgain
		return
	}
	if _, err := r.c.UpdateAgent(ctx, t.agent.AgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall}); err != nil {
		t.outcome, t.err = failed, err
		return
	}
	t.outcome = uninstalled
}

// report writes the table of targets and the totals.
func (r *reaper) report(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT ID\tHOST\tSTATUS\tLAST ACTIVE (UTC)\tSILENT\tRESULT")
	for _, t := range r.targets {
		result := outcomeText[t.outcome]
		if t.err != nil {
			result += ": " + t.err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.agent.AgentID, t.agent.HostName, t.agent.Status,
			t.agent.LastActiveTime.UTC().Format(time.DateTime), days(r.silent(&t.agent)), result)
	}
	tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(tw, "TOTAL\tAGENTS")
	fmt.Fprintf(tw, "listed (%s)\t%d\n", joinStatuses(r.cfg.statuses), r.listed)
	fmt.Fprintf(tw, "active within %s\t%d\n", days(r.cfg.olderThan), r.recent)
	fmt.Fprintf(tw, "activity unknown, left alone\t%d\n", r.unknown)
	fmt.Fprintf(tw, "silent for over %s\t%d\n", days(r.cfg.olderThan), len(r.targets))
	for outcome, text := range outcomeText {
		if n := r.results[outcome]; n > 0 {
			fmt.Fprintf(tw, "  %s\t%d\n", text, n)
		}
	}
	tw.Flush()
}

// days writes d in days and hours, such as "45d3h".
func days(d time.Duration) string {
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// joinStatuses writes statuses as a comma-separated list.
func joinStatuses(statuses []cbr.AgentStatus) string {
	s := make([]string, len(statuses))
	for i, st := range statuses {
		s[i] = string(st)
	}
	return strings.Join(s, ",")
}
