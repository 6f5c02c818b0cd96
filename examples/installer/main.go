// Command installer registers this host's backup agent with CBR, as the
// post-install step of an agent package would, adds its backup paths, and
// with -uninstall marks the agent uninstalled, as the package's removal would.
//
//	go run ./examples/installer -region ap-southeast-1 -path /opt/data -path /var/log
//	go run ./examples/installer -region ap-southeast-1 -uninstall
//	go run ./examples/installer -fake -path /opt/data
//
// The agent ID is created once and kept in a state file (mode 0600), so that
// running the installer again, after a failure or for an upgrade, registers
// the same agent instead of a new one. Host facts (hostname, primary IPv4
// address, OS) are detected; flags override them. Everything runs under one
// deadline (-timeout).
//
// Credentials come from exactly one source, and the installer never falls
// back to another:
//
//   - -ecs-metadata: the temporary keys of the cloud server's agency, from the
//     ECS metadata service; no secret is stored on the host.
//   - Otherwise cbr.FromEnv: HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (and the
//     other variables it reads) from the environment, or else ak and sk from
//     the [basic] section of the credentials file named by
//     HUAWEICLOUD_SDK_CREDENTIALS_FILE, by default ~/.huaweicloud/credentials.
//     Missing or incomplete credentials (such as HUAWEICLOUD_SDK_SK without
//     HUAWEICLOUD_SDK_AK) are an error, exit code 5.
//   - -fake: an in-process fake CBR server from package cbrtest, only when
//     asked; the installer says so on stderr, nothing reaches Huawei Cloud,
//     and the fake forgets everything when the installer exits.
//
// Both real sources need a region: -region, by default HUAWEICLOUD_SDK_REGION.
// A region that cbr.Regions does not list is a usage error naming the close
// matches, unless HUAWEICLOUD_SDK_REGION_CBR_{REGION} gives its endpoint.
//
// Everything the installer can check is checked before anything is sent or
// the state file is written: the flags, the region, the backup paths
// (absolute, not "/"), the agent type and the agent facts, with the SDK's own
// validation of the request. A run that fails these checks changes nothing.
//
// Exit codes:
//
//	0  done
//	1  CBR failed or did not answer in time: run again later, which is safe
//	2  invalid flags or values (a mistyped region lists the close matches); nothing was sent
//	3  a problem on this host: the state file or the host facts
//	4  CBR or IAM refused the credentials or their permissions
//	5  no credentials, or incomplete or invalid ones, in the environment or the credentials file; nothing was sent
//	6  -ecs-metadata: no ECS metadata service answered (not a Huawei Cloud server, or the service is
//	   unreachable), or something else answered at its address, such as a proxy
//	7  -ecs-metadata: the cloud server has no agency: the metadata service answered 401
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
	"net/http"
	"net/url"
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

// Exit codes, as the package documentation lists them.
const (
	exitOK         = 0 // done
	exitFailed     = 1 // CBR failed or did not answer in time; re-running is safe
	exitUsage      = 2 // invalid flags or values
	exitLocal      = 3 // a problem on this host: state file, host facts
	exitDenied     = 4 // credentials or permissions refused
	exitNoCreds    = 5 // no credentials, or incomplete or invalid ones
	exitNoMetadata = 6 // -ecs-metadata: no metadata service answered
	exitNoAgency   = 7 // -ecs-metadata: the server has no agency
)

// exitCodesHelp ends the usage text.
const exitCodesHelp = `
Exit codes:
  0  done
  1  CBR failed or did not answer in time: run again later (safe)
  2  invalid flags or values; nothing was sent
  3  a problem on this host: the state file or the host facts
  4  CBR or IAM refused the credentials or their permissions
  5  no credentials, or incomplete or invalid ones; nothing was sent
  6  -ecs-metadata: no ECS metadata service answered (not a Huawei Cloud server?)
  7  -ecs-metadata: the cloud server has no agency
`

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
	return runWith(ctx, args, stdout, stderr, sources{}.connect)
}

// connector returns a client and a function to call when done with it.
type connector func(cfg config, stderr io.Writer) (*cbr.Client, func(), error)

// sources are where connect finds the ECS metadata service, and options it
// adds to every client. The zero value is what the installer uses; tests
// point the metadata service at a fake and shorten the retry waits.
type sources struct {
	metadataEndpoint string       // "" for the real ECS metadata service
	options          []cbr.Option // applied after the installer's own
}

// connect is the one place that decides which CBR the installer talks to:
// the fake only with -fake; else CBR in cfg.region, with the agency's keys
// (-ecs-metadata) or with what cbr.FromEnv finds. It sends nothing.
func (s sources) connect(cfg config, stderr io.Writer) (*cbr.Client, func(), error) {
	if cfg.fake {
		srv := cbrtest.NewServer()
		fmt.Fprintf(stderr, "installer: -fake: using the in-process fake CBR server at %s; nothing is sent to Huawei Cloud, and the fake forgets everything when the installer exits\n", srv.URL)
		c, err := srv.Client(append([]cbr.Option{cbr.WithUserAgent(userAgent)}, s.options...)...)
		if err != nil {
			srv.Close()
			return nil, nil, err
		}
		return c, srv.Close, nil
	}
	opts := []cbr.Option{cbr.WithRegion(cfg.region), cbr.WithUserAgent(userAgent)}
	if cfg.ecsMetadata {
		opts = append(opts, cbr.WithCredentials(cbr.ECSMetadata{Endpoint: s.metadataEndpoint}))
	}
	// FromEnv also gives the project ID and endpoint overrides; with
	// -ecs-metadata it adds no credentials.
	opts = append(opts, cbr.FromEnv())
	c, err := cbr.NewClient(append(opts, s.options...)...)
	return c, func() {}, err
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
	fake        bool
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
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if cfg.uninstall {
		return uninstall(ctx, connect, cfg, stdout, stderr)
	}
	return install(ctx, connect, cfg, stdout, stderr)
}

// parseFlags parses args and checks every value it can on its own; the flag
// package reports its own errors on stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{}
	flags := flag.NewFlagSet("installer", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: installer [flags]\n\n"+
			"Registers this host's backup agent with CBR and adds its backup paths;\n"+
			"with -uninstall, marks the agent uninstalled (its backups are kept).\n"+
			"Credentials: -ecs-metadata, or else HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK or the\n"+
			"credentials file (cbr.FromEnv); -fake runs against an in-process fake instead.\n\n")
		flags.PrintDefaults()
		fmt.Fprint(flags.Output(), exitCodesHelp)
	}
	flags.StringVar(&cfg.state, "state", defaultStatePath(), "`file` that keeps the agent ID between runs")
	flags.Func("path", "an absolute directory to back up, such as /opt/data (repeatable)", func(p string) error {
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
	flags.BoolVar(&cfg.fake, "fake", false, "talk to an in-process fake CBR server instead of CBR (to try the installer)")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.ecsMetadata && !set["type"] {
		cfg.agentType = string(cbr.AgentTypeCloud) // the metadata service exists only on cloud servers
	}
	regionFrom := "HUAWEICLOUD_SDK_REGION"
	if set["region"] {
		regionFrom = "-region"
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
	case cfg.fake && cfg.ecsMetadata:
		return cfg, errors.New("-fake and -ecs-metadata do not go together")
	case cfg.agentType != string(cbr.AgentTypeNative) && cfg.agentType != string(cbr.AgentTypeCloud):
		return cfg, fmt.Errorf("-type must be native or cloud, not %q", cfg.agentType)
	case !cfg.fake && cfg.region == "":
		return cfg, errors.New("a region is required: give -region or set HUAWEICLOUD_SDK_REGION, such as ap-southeast-1 (or use -fake to try the installer without CBR)")
	}
	for _, p := range cfg.paths {
		if p != "" && strings.Trim(p, "/") == "" {
			return cfg, fmt.Errorf("-path %q: the whole file system cannot be a backup path; name its directories, such as /opt/data", p)
		}
	}
	if cfg.region != "" {
		if err := checkRegion(cfg.region, regionFrom); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// install checks the agent's facts and paths, then registers the agent and
// adds its paths.
func install(ctx context.Context, connect connector, cfg config, stdout, stderr io.Writer) int {
	// Check the registration with the agent ID kept, or a new one; the
	// state file is created only once everything is checked, below.
	id, err := loadAgentID(cfg.state)
	if errors.Is(err, fs.ErrNotExist) {
		id, err = newAgentID(), nil
	}
	if err != nil {
		fmt.Fprintf(stderr, "installer: %v\n", err)
		return exitLocal
	}
	in, code := agentFacts(cfg, id, stderr)
	if code != exitOK {
		return code
	}
	if err := in.Validate(); err != nil {
		return invalid(stderr, cfg, err)
	}
	var addPaths cbr.AddPathsRequest
	if len(cfg.paths) > 0 {
		addPaths = cbr.AddPathsRequest{Paths: cfg.paths}
		if err := addPaths.Validate(); err != nil {
			return invalid(stderr, cfg, err)
		}
	}
	c, closeClient, code := openClient(connect, cfg, stderr)
	if code != exitOK {
		return code
	}
	defer closeClient()

	id, created, err := loadOrCreateAgentID(cfg.state)
	if err != nil {
		fmt.Fprintf(stderr, "installer: %v\n", err)
		return exitLocal
	}
	if created {
		fmt.Fprintf(stderr, "installer: new agent ID %s saved in %s\n", id, cfg.state)
	}
	in.AgentID = id

	agent, err := c.RegisterAgent(ctx, in)
	if err != nil {
		return failed(stderr, cfg, err)
	}
	fmt.Fprintf(stdout, "registered agent %s (host %s, %s, %s), status %s\n",
		agent.AgentID, in.HostName, in.HostIP, in.HostOS, agent.Status)

	if len(addPaths.Paths) == 0 {
		return exitOK
	}
	res, err := c.AddAgentPaths(ctx, id, addPaths)
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

// agentFacts returns the registration of agent id: the flags, and the host
// facts they do not give, detected.
func agentFacts(cfg config, id string, stderr io.Writer) (cbr.AgentRegister, int) {
	in := cbr.AgentRegister{
		AgentID: id, HostName: cfg.hostName, HostIP: cfg.hostIP, HostOS: cfg.hostOS,
		HostNickname: cfg.nickname, AgentVersion: cfg.version, AgentType: cbr.AgentType(cfg.agentType),
	}
	var err error
	if in.HostName == "" {
		if in.HostName, err = os.Hostname(); err != nil {
			fmt.Fprintf(stderr, "installer: cannot read the host name (%v); pass it with -hostname\n", err)
			return in, exitLocal
		}
	}
	if in.HostIP == "" {
		if in.HostIP, err = primaryIPv4(); err != nil {
			fmt.Fprintf(stderr, "installer: %v; pass the address to register with -ip\n", err)
			return in, exitLocal
		}
	}
	return in, exitOK
}

// fieldFlags names the flag that gives each field of a registration.
var fieldFlags = map[string]string{
	"host_name": "-hostname", "host_ip": "-ip", "host_os": "-os", "host_nickname": "-nickname",
	"agent_version": "-agent-version", "agent_type": "-type", "add_path": "-path",
}

// invalid reports a value the SDK's validation refused, with the flag that
// gives it, and returns the exit code. Nothing was sent.
func invalid(stderr io.Writer, cfg config, err error) int {
	fmt.Fprintf(stderr, "installer: %v\n", err)
	var verr *cbr.ValidationError
	if errors.As(err, &verr) && verr.Field == "agent_id" {
		fmt.Fprintf(stderr, "installer: the agent ID in the state file %s is not valid: fix it, or remove the file to register this host as a new agent\n", cfg.state)
		return exitLocal
	}
	what := "the value named above"
	if verr != nil && fieldFlags[verr.Field] != "" {
		what = fieldFlags[verr.Field]
	}
	fmt.Fprintf(stderr, "installer: fix %s (see -h) and run again; nothing was sent\n", what)
	return exitUsage
}

// openClient connects to CBR, or reports why it cannot and returns the exit code.
func openClient(connect connector, cfg config, stderr io.Writer) (*cbr.Client, func(), int) {
	c, closeClient, err := connect(cfg, stderr)
	if err == nil {
		return c, closeClient, exitOK
	}
	fmt.Fprintf(stderr, "installer: %v\n", err)
	if cfg.ecsMetadata {
		fmt.Fprintln(stderr, "installer: fix the setting named above and run again; nothing was sent")
	} else {
		fmt.Fprintln(stderr, "installer: no usable credentials, so nothing was sent: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, "+
			"or ak and sk in the [basic] section of the credentials file (HUAWEICLOUD_SDK_CREDENTIALS_FILE, by default ~/.huaweicloud/credentials); "+
			"on a Huawei Cloud server with an agency, use -ecs-metadata; to try the installer without CBR, use -fake")
	}
	return nil, nil, exitNoCreds
}

// uninstall marks the agent uninstalled. An agent that was never registered
// is not an error: there is nothing to mark, and a package's removal must not
// fail for it.
func uninstall(ctx context.Context, connect connector, cfg config, stdout, stderr io.Writer) int {
	id, err := loadAgentID(cfg.state)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "installer: no state file %s: no agent was registered from this host (or -state points elsewhere); nothing to uninstall\n", cfg.state)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "installer: %v\n", err)
		return exitLocal
	}
	c, closeClient, code := openClient(connect, cfg, stderr)
	if code != exitOK {
		return code
	}
	defer closeClient()
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
	case cfg.ecsMetadata && metadataStatus(err) == http.StatusUnauthorized:
		fmt.Fprintln(stderr, "installer: the ECS metadata service has no keys for this server: it has no agency. "+
			"Attach an agency that delegates CBR permissions to ECS to this server (ECS console, server, Management Information, Agency), then run again")
		return exitNoAgency
	case cfg.ecsMetadata && metadataStatus(err) != 0:
		fmt.Fprintln(stderr, "installer: the address of the ECS metadata service (169.254.169.254) did not answer as the service does: "+
			"a proxy or firewall may stand in the way (the metadata service is never reached through a proxy), or the service failed; "+
			"on premises, drop -ecs-metadata and give an access key (HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or the credentials file)")
		return exitNoMetadata
	case cfg.ecsMetadata && metadataUnreachable(err):
		fmt.Fprintln(stderr, "installer: no ECS metadata service answered (169.254.169.254): this host is not a Huawei Cloud server, "+
			"or a firewall, proxy or route keeps it from the metadata service. "+
			"On premises, drop -ecs-metadata and give an access key (HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or the credentials file)")
		return exitNoMetadata
	case errors.Is(err, cbr.ErrInvalidRequest):
		fmt.Fprintln(stderr, "installer: fix the value named above (see -h) and run again")
		return exitUsage
	case errors.Is(err, cbr.ErrUnauthorized), errors.Is(err, cbr.ErrForbidden):
		if cfg.ecsMetadata {
			fmt.Fprintln(stderr, "installer: CBR refused the agency's temporary keys or their permissions: check that the server's agency grants CBR permissions in this region's project; then run again")
		} else {
			fmt.Fprintln(stderr, "installer: CBR refused the credentials or their permissions: check HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK (or the credentials file) and the project ID, and that the IAM user may use CBR; then run again")
		}
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

// metadataStatus returns the status of the ECS metadata service's answer
// when err is one, else 0. The SDK names its requests to the service
// "get ECS metadata ..."; 401 means the server has no agency.
func metadataStatus(err error) int {
	var apiErr *cbr.APIError
	if errors.As(err, &apiErr) && strings.HasPrefix(apiErr.Op, "get ECS metadata") {
		return apiErr.StatusCode
	}
	return 0
}

// metadataUnreachable reports whether a request to the ECS metadata service
// got no answer: refused, unreachable, dropped or timed out. Every *url.Error
// in err's chain is looked at, since the call to CBR that needed the keys
// failed with one of its own.
func metadataUnreachable(err error) bool {
	if errors.Is(err, cbr.ErrAttemptTimeout) && strings.Contains(err.Error(), "get ECS metadata") {
		return true // the SDK's bound of a metadata request ended it
	}
	for {
		var urlErr *url.Error
		if !errors.As(err, &urlErr) {
			return false
		}
		if u, perr := url.Parse(urlErr.URL); perr == nil &&
			(strings.HasSuffix(u.Path, "/meta-data/latest/api/token") || strings.HasSuffix(u.Path, "/openstack/latest/securitykey")) {
			return true
		}
		err = urlErr.Err
	}
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
