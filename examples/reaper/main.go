// Command reaper marks uninstalled the backup agents that have been silent
// for longer than a given age, as an operator's clean-up job would. It is
// the model of a loop that changes the agents it goes through.
//
//	go run ./examples/reaper -fake                          # a demo fleet, in process
//	go run ./examples/reaper -region ap-southeast-1         # dry run: what it would do
//	go run ./examples/reaper -region ap-southeast-1 -apply  # do it
//
// It lists the agents in the chosen statuses (-status, normal and abnormal by
// default) and picks those whose last activity is older than -older-than
// (720h, 30 days, by default). Agents whose activity is unknown (the API
// reports no last_active_time) are left alone: unknown is not old. Without
// -apply it changes nothing and only says what it would do.
//
// "Uninstall" is UpdateAgent with AgentStatusUninstall: CBR records that the
// agent is gone and keeps its backups, and the agent can register again.
// The reaper never calls UnregisterAgent, which deletes every backup of the
// agent and cannot be undone.
//
// Just before it changes an agent, the reaper reads it again, and leaves it
// alone if it became active, was uninstalled or went away since the listing.
// Progress goes to stderr; stdout gets a table of the agents acted on (or
// that would be) and the totals.
//
// Credentials come from the environment or the credentials file, read by
// cbr.FromEnv (HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK, ..., or
// ~/.huaweicloud/credentials), with -region or HUAWEICLOUD_SDK_REGION. A
// missing or partial credential is an error: the reaper talks to the
// in-process fake of package cbrtest only when asked with -fake.
//
// Exit codes: 0 done (a dry run included); 1 CBR failed or did not answer
// in time, or at least one agent could not be uninstalled: the table says
// which, and running again is safe; 2 invalid flags; 3 no usable credentials
// or configuration in the environment; 4 credentials or permissions refused.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// Exit codes.
const (
	exitOK     = 0 // done
	exitFailed = 1 // CBR failed, or an agent could not be uninstalled; re-running is safe
	exitUsage  = 2 // invalid flags
	exitConfig = 3 // no usable credentials or configuration
	exitDenied = 4 // credentials or permissions refused
)

// userAgent is put in front of the SDK's User-Agent.
const userAgent = "cbr-reaper-example/1.0"

// minAge is the shortest -older-than: anything shorter is almost surely a
// mistake that would uninstall working agents.
const minAge = 24 * time.Hour

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole reaper; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, connect, time.Now)
}

// connector returns a client and a function to call when done with it.
type connector func(cfg config, stderr io.Writer) (*cbr.Client, func(), error)

// connect is the one place that decides which CBR the reaper talks to.
func connect(cfg config, stderr io.Writer) (*cbr.Client, func(), error) {
	if !cfg.fake {
		c, err := cbr.NewClient(cbr.WithRegion(cfg.region), cbr.WithUserAgent(userAgent), cbr.FromEnv())
		return c, func() {}, err
	}
	srv := cbrtest.NewServer()
	fleet := demoFleet(time.Now())
	if err := srv.SetAgents(fleet...); err != nil {
		srv.Close()
		return nil, nil, err
	}
	fmt.Fprintf(stderr, "reaper: -fake: an in-process fake CBR at %s with a demo fleet of %d agents; nothing real is touched\n", srv.URL, len(fleet))
	c, err := srv.Client(cbr.WithUserAgent(userAgent))
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return c, srv.Close, nil
}

// demoFleet is what -fake starts with: a few agents of every kind.
func demoFleet(now time.Time) []cbr.Agent {
	day := 24 * time.Hour
	agent := func(id, host string, status cbr.AgentStatus, silent time.Duration) cbr.Agent {
		a := cbr.Agent{AgentID: id, HostName: host, HostIP: "192.0.2.10", HostOS: "linux", Status: status,
			CreatedAt: now.Add(-400 * day)}
		if silent >= 0 {
			a.LastActiveTime = now.Add(-silent)
		}
		return a
	}
	return []cbr.Agent{
		agent("demo-01", "web-1", cbr.AgentStatusNormal, 2*time.Minute),
		agent("demo-02", "web-2", cbr.AgentStatusNormal, 45*day),
		agent("demo-03", "db-1", cbr.AgentStatusAbnormal, 31*day),
		agent("demo-04", "db-2", cbr.AgentStatusAbnormal, 3*day),
		agent("demo-05", "batch-1", cbr.AgentStatusNormal, -1), // activity unknown
		agent("demo-06", "old-1", cbr.AgentStatusUninstall, 200*day),
		agent("demo-07", "old-2", cbr.AgentStatusNormal, 365*day),
	}
}

// config is what the flags say.
type config struct {
	olderThan time.Duration
	statuses  []cbr.AgentStatus
	apply     bool
	timeout   time.Duration
	region    string
	fake      bool
}

// runWith runs the reaper with the client that connect returns and the
// clock now, against which the age of an agent's last activity is measured.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, connect connector, now func() time.Time) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "reaper: %v (see -h)\n", err)
		return exitUsage
	}
	c, closeClient, err := connect(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "reaper: %v\n", err)
		return exitConfig
	}
	defer closeClient()

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if !cfg.apply {
		fmt.Fprintln(stderr, "reaper: dry run: nothing will be changed; give -apply to uninstall")
	}
	r := &reaper{c: c, cfg: cfg, now: now(), stderr: stderr}
	if err := r.collect(ctx); err != nil {
		fmt.Fprintf(stderr, "reaper: %v\nreaper: nothing was changed\n", err)
		return exitCode(err)
	}
	code := r.act(ctx)
	r.report(stdout)
	switch {
	case !cfg.apply:
		fmt.Fprintf(stderr, "reaper: dry run: %d agents would be uninstalled; give -apply to do it\n", len(r.targets))
	case code != exitOK:
		fmt.Fprintf(stderr, "reaper: %d of %d agents uninstalled, %d failed, %d not attempted; running again is safe\n",
			r.results[uninstalled], len(r.targets), r.results[failed], r.results[notAttempted])
	default:
		fmt.Fprintf(stderr, "reaper: done: %d agents uninstalled\n", r.results[uninstalled])
	}
	return code
}

// parseFlags parses args; the flag package reports its own errors on stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{}
	flags := flag.NewFlagSet("reaper", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: reaper [flags]\n\n"+
			"Marks uninstalled (keeping their backups) the agents silent for longer than -older-than.\n"+
			"Without -apply it only says what it would do.\n\n")
		flags.PrintDefaults()
		fmt.Fprintf(flags.Output(), "\nExit codes: 0 done; 1 CBR failed or an agent could not be uninstalled, run again (safe);\n"+
			"2 invalid flags; 3 no usable credentials or configuration; 4 credentials or permissions refused.\n")
	}
	flags.DurationVar(&cfg.olderThan, "older-than", 720*time.Hour, "uninstall agents whose last activity is older than this (at least 24h)")
	status := flags.String("status", "normal,abnormal", "comma-separated statuses of the agents to consider: normal, abnormal")
	flags.BoolVar(&cfg.apply, "apply", false, "uninstall; without it, only say what would be done")
	flags.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "deadline for the whole run")
	flags.StringVar(&cfg.region, "region", os.Getenv("HUAWEICLOUD_SDK_REGION"), "CBR region, such as ap-southeast-1 (default $HUAWEICLOUD_SDK_REGION)")
	flags.BoolVar(&cfg.fake, "fake", false, "use an in-process fake CBR with a demo fleet instead of a real account")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	regionSet := false
	flags.Visit(func(f *flag.Flag) { regionSet = regionSet || f.Name == "region" })
	switch {
	case flags.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", flags.Arg(0))
	case cfg.olderThan < minAge:
		return cfg, fmt.Errorf("-older-than must be at least %v, not %v", minAge, cfg.olderThan)
	case cfg.timeout <= 0:
		return cfg, fmt.Errorf("-timeout must be positive, not %v", cfg.timeout)
	case cfg.fake && regionSet:
		return cfg, errors.New("-fake and -region do not go together")
	case !cfg.fake && cfg.region == "":
		return cfg, errors.New("give -region (or set HUAWEICLOUD_SDK_REGION), or -fake for a demo")
	}
	if !cfg.fake {
		if err := checkRegion(cfg.region); err != nil {
			return cfg, err
		}
	}
	for _, s := range strings.Split(*status, ",") {
		st := cbr.AgentStatus(strings.TrimSpace(s))
		if st != cbr.AgentStatusNormal && st != cbr.AgentStatusAbnormal {
			return cfg, fmt.Errorf("-status: %q is not normal or abnormal", st)
		}
		if !slices.Contains(cfg.statuses, st) {
			cfg.statuses = append(cfg.statuses, st)
		}
	}
	return cfg, nil
}

// checkRegion refuses a region that the SDK does not know and for which
// the environment gives no CBR endpoint, naming the known regions that
// begin like it.
func checkRegion(region string) error {
	override := "HUAWEICLOUD_SDK_REGION_CBR_" + strings.ToUpper(strings.ReplaceAll(region, "-", "_"))
	if slices.Contains(cbr.Regions(), region) || os.Getenv(override) != "" {
		return nil
	}
	prefix := region[:strings.LastIndex(region, "-")+1]
	var near []string
	for _, r := range cbr.Regions() {
		if prefix != "" && strings.HasPrefix(r, prefix) {
			near = append(near, r)
		}
	}
	if len(near) == 0 {
		return fmt.Errorf("unknown region %q (set %s to its CBR endpoint to use it)", region, override)
	}
	return fmt.Errorf("unknown region %q: did you mean %s?", region, strings.Join(near, ", "))
}

// exitCode is the exit code of a failed call.
func exitCode(err error) int {
	if errors.Is(err, cbr.ErrUnauthorized) || errors.Is(err, cbr.ErrForbidden) {
		return exitDenied
	}
	return exitFailed
}
