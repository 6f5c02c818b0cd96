// Command installer registers this host's backup agent with CBR, as the
// post-install step of an agent package would, adds its backup paths, and
// with -uninstall marks the agent uninstalled, as the package's removal would.
//
//	go run ./examples/installer -path /opt/data -path /var/log
//	go run ./examples/installer -uninstall
//
// The agent ID is created once and kept in a state file (mode 0600), so that
// running the installer again, after a failure or for an upgrade, registers
// the same agent instead of a new one. Host facts (hostname, primary IPv4
// address, OS) are detected; flags override them. Everything runs under one
// deadline (-timeout).
//
// Credentials, in this order:
//
//   - -ecs-metadata: the temporary keys of the cloud server's agency, from the
//     ECS metadata service; no secret is stored on the host. Needs -region.
//   - HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (and the other variables that
//     cbr.FromEnv reads) in the environment. Needs -region or HUAWEICLOUD_SDK_REGION.
//   - Otherwise the installer talks to an in-process fake CBR server from
//     package cbrtest, and says so on stderr; a new fake starts empty on every run.
//
// Exit codes: 0 done; 1 CBR failed or did not answer in time: run again
// later, which is safe; 2 invalid flags or values; 3 a problem on this host
// (state file, host facts, environment); 4 credentials or permissions refused.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// Exit codes.
const (
	exitOK     = 0 // done
	exitFailed = 1 // CBR failed or did not answer in time; re-running is safe
	exitUsage  = 2 // invalid flags or values
	exitLocal  = 3 // a problem on this host: state file, host facts, environment
	exitDenied = 4 // credentials or permissions refused
)

// userAgent is put in front of the SDK's User-Agent.
const userAgent = "cbr-installer-example/1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole installer; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, connect)
}

// connector returns a client and a function to call when done with it.
type connector func(cfg config, stderr io.Writer) (*cbr.Client, func(), error)

// connect is the one place that decides which CBR the installer talks to.
func connect(cfg config, stderr io.Writer) (*cbr.Client, func(), error) {
	switch {
	case cfg.ecsMetadata:
		c, err := cbr.NewClient(cbr.WithRegion(cfg.region), cbr.WithUserAgent(userAgent),
			cbr.WithCredentials(cbr.ECSMetadata{Endpoint: cfg.metadataEndpoint}), cbr.FromEnv())
		return c, func() {}, err
	case os.Getenv("HUAWEICLOUD_SDK_AK") != "":
		if cfg.region == "" {
			return nil, nil, errors.New("HUAWEICLOUD_SDK_AK is set: also give -region or HUAWEICLOUD_SDK_REGION, such as ap-southeast-1")
		}
		c, err := cbr.NewClient(cbr.WithRegion(cfg.region), cbr.WithUserAgent(userAgent), cbr.FromEnv())
		return c, func() {}, err
	}
	srv := cbrtest.NewServer()
	fmt.Fprintf(stderr, "installer: no HUAWEICLOUD_SDK_* credentials in the environment; using the in-process fake CBR server at %s, which forgets everything when the installer exits\n", srv.URL)
	c, err := srv.Client(cbr.WithUserAgent(userAgent))
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return c, srv.Close, nil
}

// config is what the flags say.
type config struct {
	state     string
	paths     []string
	uninstall bool
	timeout   time.Duration
	hostName  string
	hostIP    string
	hostOS    string
	nickname  string
	version   string
	agentType string

	region      string
	ecsMetadata bool
	// metadataEndpoint is the ECS metadata service; empty for the real one.
	// Only tests set it.
	metadataEndpoint string
}

// runWith runs the installer with the client that connect returns.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, connect connector) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "installer: %v (see -h)\n", err)
		return exitUsage
	}
	c, closeClient, err := connect(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "installer: %v\n", err)
		return exitLocal
	}
	defer closeClient()

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if cfg.uninstall {
		return uninstall(ctx, c, cfg, stdout, stderr)
	}
	return install(ctx, c, cfg, stdout, stderr)
}

// parseFlags parses args; the flag package reports its own errors on stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{}
	flags := flag.NewFlagSet("installer", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: installer [flags]\n\n"+
			"Registers this host's backup agent with CBR and adds its backup paths;\n"+
			"with -uninstall, marks the agent uninstalled (its backups are kept).\n\n")
		flags.PrintDefaults()
		fmt.Fprintf(flags.Output(), "\nExit codes: 0 done; 1 CBR failed or timed out, run again later (safe);\n"+
			"2 invalid flags or values; 3 a problem on this host; 4 credentials or permissions refused.\n")
	}
	flags.StringVar(&cfg.state, "state", defaultStatePath(), "`file` that keeps the agent ID between runs")
	flags.Func("path", "a directory to back up, such as /opt/data (repeatable)", func(p string) error {
		cfg.paths = append(cfg.paths, p)
		return nil
	})
	flags.BoolVar(&cfg.uninstall, "uninstall", false, "mark the agent uninstalled instead of registering it")
	flags.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "deadline for the whole run")
	flags.StringVar(&cfg.hostName, "hostname", "", "host name to register (default: detected)")
	flags.StringVar(&cfg.hostIP, "ip", "", "host IP address to register (default: the primary IPv4 address)")
	flags.StringVar(&cfg.hostOS, "os", runtime.GOOS, "host operating system to register")
	flags.StringVar(&cfg.nickname, "nickname", "", "optional alias of the host")
	flags.StringVar(&cfg.version, "agent-version", "1.0.0", "version of the agent being installed")
	flags.StringVar(&cfg.agentType, "type", string(cbr.AgentTypeNative), "native (on-premises host) or cloud (cloud server); cloud with -ecs-metadata")
	flags.StringVar(&cfg.region, "region", os.Getenv("HUAWEICLOUD_SDK_REGION"), "CBR region, such as ap-southeast-1 (default $HUAWEICLOUD_SDK_REGION)")
	flags.BoolVar(&cfg.ecsMetadata, "ecs-metadata", false, "authenticate with the cloud server's agency, from the ECS metadata service")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case flags.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", flags.Arg(0))
	case cfg.timeout <= 0:
		return cfg, fmt.Errorf("-timeout must be positive, not %v", cfg.timeout)
	case cfg.state == "":
		return cfg, errors.New("-state is required: there is no default state directory for this user")
	case cfg.uninstall && len(cfg.paths) > 0:
		return cfg, errors.New("-path and -uninstall do not go together")
	case cfg.ecsMetadata && cfg.region == "":
		return cfg, errors.New("-ecs-metadata needs -region")
	}
	typeSet := false
	flags.Visit(func(f *flag.Flag) { typeSet = typeSet || f.Name == "type" })
	if cfg.ecsMetadata && !typeSet {
		cfg.agentType = string(cbr.AgentTypeCloud) // the metadata service exists only on cloud servers
	}
	return cfg, nil
}

// install registers the agent and adds its paths.
func install(ctx context.Context, c *cbr.Client, cfg config, stdout, stderr io.Writer) int {
	id, created, err := loadOrCreateAgentID(cfg.state)
	if err != nil {
		fmt.Fprintf(stderr, "installer: %v\n", err)
		return exitLocal
	}
	if created {
		fmt.Fprintf(stderr, "installer: new agent ID %s saved in %s\n", id, cfg.state)
	}
	in := cbr.AgentRegister{
		AgentID: id, HostName: cfg.hostName, HostIP: cfg.hostIP, HostOS: cfg.hostOS,
		HostNickname: cfg.nickname, AgentVersion: cfg.version, AgentType: cbr.AgentType(cfg.agentType),
	}
	if in.HostName == "" {
		if in.HostName, err = os.Hostname(); err != nil {
			fmt.Fprintf(stderr, "installer: cannot read the host name (%v); pass it with -hostname\n", err)
			return exitLocal
		}
	}
	if in.HostIP == "" {
		if in.HostIP, err = primaryIPv4(); err != nil {
			fmt.Fprintf(stderr, "installer: %v; pass the address to register with -ip\n", err)
			return exitLocal
		}
	}

	agent, err := c.RegisterAgent(ctx, in)
	if err != nil {
		return failed(stderr, cfg, err)
	}
	fmt.Fprintf(stdout, "registered agent %s (host %s, %s, %s), status %s\n",
		agent.AgentID, in.HostName, in.HostIP, in.HostOS, agent.Status)

	if len(cfg.paths) == 0 {
		return exitOK
	}
	res, err := c.AddAgentPaths(ctx, id, cbr.AddPathsRequest{Paths: cfg.paths})
	if err != nil {
		return failed(stderr, cfg, err)
	}
	if len(res.Added) > 0 {
		fmt.Fprintf(stdout, "backup paths added: %s\n", strings.Join(res.Added, ", "))
	}
	if len(res.Existed) > 0 {
		fmt.Fprintf(stdout, "backup paths already present: %s\n", strings.Join(res.Existed, ", "))
	}
	return exitOK
}

// uninstall marks the agent uninstalled. An agent that was never registered
// is not an error: there is nothing to mark, and a package's removal must not
// fail for it.
func uninstall(ctx context.Context, c *cbr.Client, cfg config, stdout, stderr io.Writer) int {
	id, err := loadAgentID(cfg.state)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "installer: no state file %s: no agent was registered from this host (or -state points elsewhere); nothing to uninstall\n", cfg.state)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "installer: %v\n", err)
		return exitLocal
	}
	agent, err := c.UpdateAgent(ctx, id, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	if errors.Is(err, cbr.ErrNotFound) {
		fmt.Fprintf(stderr, "installer: agent %s is not registered with CBR in this project; nothing to uninstall\n", id)
		return exitOK
	}
	if err != nil {
		return failed(stderr, cfg, err)
	}
	fmt.Fprintf(stdout, "agent %s marked %s; its backups are kept, and its ID stays in %s so that a reinstall registers the same agent\n",
		agent.AgentID, agent.Status, cfg.state)
	return exitOK
}

// failed reports a failed call with what to do about it, and returns the exit code.
func failed(stderr io.Writer, cfg config, err error) int {
	fmt.Fprintf(stderr, "installer: %v\n", err)
	var apiErr *cbr.APIError
	switch {
	case errors.Is(err, cbr.ErrInvalidRequest):
		fmt.Fprintln(stderr, "installer: fix the value named above (see -h) and run again")
		return exitUsage
	case errors.Is(err, cbr.ErrUnauthorized), errors.Is(err, cbr.ErrForbidden):
		fmt.Fprintln(stderr, "installer: CBR refused the credentials or their permissions: check HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK and the project ID, and that the IAM user may use CBR; then run again")
		return exitDenied
	case errors.As(err, &apiErr) && apiErr.Code == "BackupService.7407":
		fmt.Fprintln(stderr, "installer: the agent has as many backup paths as CBR allows: remove paths it no longer needs, or pass fewer -path flags, and run again")
		return exitFailed
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "installer: gave up after -timeout %v; run again later: the agent ID in %s is kept, so the same agent is registered\n", cfg.timeout, cfg.state)
		return exitFailed
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "installer: interrupted; run again to finish: the agent ID in %s is kept\n", cfg.state)
		return exitFailed
	}
	fmt.Fprintf(stderr, "installer: run again later; re-running is safe: the agent ID in %s is kept, so the same agent is registered\n", cfg.state)
	return exitFailed
}

// state is the content of the state file.
type state struct {
	AgentID string `json:"agent_id"`
}

// defaultStatePath is /var/lib/cbr-agent/state.json for root, whatever HOME
// says (package scripts run as root, with or without the user's HOME), else
// state.json in a cbr-agent directory of the user's configuration directory.
func defaultStatePath() string {
	if os.Geteuid() == 0 {
		return "/var/lib/cbr-agent/state.json"
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "cbr-agent", "state.json")
}

// loadOrCreateAgentID returns the agent ID kept in path, or creates one and
// saves it there before anything is registered, so that a run that fails
// half-way is finished by the next run with the same ID.
func loadOrCreateAgentID(path string) (id string, created bool, err error) {
	id, err = loadAgentID(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return id, false, err
	}
	id = newAgentID()
	err = saveNewState(path, state{AgentID: id})
	if errors.Is(err, fs.ErrExist) { // another run created it first: use its ID
		id, err = loadAgentID(path)
		return id, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("cannot save the agent ID in %s: %w; fix the directory's permissions or choose another file with -state", path, err)
	}
	return id, true, nil
}

// loadAgentID reads the agent ID from the state file at path, and makes the
// file private (mode 0600) if it is not. A missing file is an error matching
// fs.ErrNotExist.
func loadAgentID(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the state file: %w; fix it, or choose another file with -state", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil || st.AgentID == "" {
		return "", fmt.Errorf("state file %s does not hold an agent ID; fix it, or remove it to register this host as a new agent", path)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		_ = os.Chmod(path, 0o600)
	}
	return st.AgentID, nil
}

// saveNewState writes a new state file atomically, with mode 0600, in a
// directory created with mode 0700 if needed. It never replaces a file: when
// another run created one first, the error matches fs.ErrExist.
func saveNewState(path string, st state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".state-*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}

// newAgentID returns a random UUID (version 4), the form of agent IDs in the API's examples.
func newAgentID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// primaryIPv4 returns the first global unicast IPv4 address of the first
// interface that is up and not a loopback, in the system's interface order.
// It sends nothing on the network.
func primaryIPv4() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("cannot list network interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("found no IPv4 address on a network interface that is up")
}
