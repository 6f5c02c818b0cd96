// Command quickstart registers a backup agent, marks it uninstalled, and
// prints the resulting agent as indented JSON.
//
// By default it runs against an in-process fake CBR server from package
// cbrtest, and says so on stderr. Nothing is sent to Huawei Cloud, whatever
// credentials the environment or the credentials file hold:
//
//	go run ./examples/quickstart
//
// With -real it talks to CBR, configured by cbr.FromEnv, in the region of
// -region (by default HUAWEICLOUD_SDK_REGION). It first says what it will do:
// register a new agent for host "ecs-00002" in the account and mark it
// uninstalled; the agent stays in the account, marked uninstalled.
//
//	HUAWEICLOUD_SDK_AK=... HUAWEICLOUD_SDK_SK=... go run ./examples/quickstart -real -region ap-southeast-1
//
// cbr.FromEnv reads:
//
//	HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK   the access key pair, else ak and sk in the [basic]
//	                                         section of the credentials file
//	HUAWEICLOUD_SDK_CREDENTIALS_FILE         the credentials file, by default ~/.huaweicloud/credentials
//	HUAWEICLOUD_SDK_SECURITY_TOKEN           for a temporary key pair
//	HUAWEICLOUD_SDK_PROJECT_ID               else looked up in IAM by the region's name
//	HUAWEICLOUD_SDK_REGION_CBR_{REGION}      another CBR endpoint, such as HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1
//	HUAWEICLOUD_SDK_IAM_ENDPOINT             another IAM endpoint
//
// Exit codes: 0 done; 1 failed (missing credentials included); 2 invalid flags.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// The agent the quickstart registers.
const (
	hostName = "ecs-00002"
	hostIP   = "10.10.0.2"
)

// run registers an agent, marks it uninstalled and writes the agent to stdout
// as indented JSON; notes for the user go to stderr. It returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	flags.SetOutput(stderr)
	useCBR := flags.Bool("real", false, "talk to CBR with the credentials cbr.FromEnv finds, instead of the in-process fake")
	region := flags.String("region", os.Getenv("HUAWEICLOUD_SDK_REGION"), "CBR region for -real, such as ap-southeast-1 (default $HUAWEICLOUD_SDK_REGION)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "quickstart: unexpected argument %q (see -h)\n", flags.Arg(0))
		return exitUsage
	}

	var (
		c    *cbr.Client
		done = func() {}
		err  error
	)
	if *useCBR {
		if *region == "" {
			fmt.Fprintln(stderr, "quickstart: -real needs a region: give -region or set HUAWEICLOUD_SDK_REGION, such as ap-southeast-1")
			return exitUsage
		}
		c, err = cbr.NewClient(cbr.WithRegion(*region), cbr.FromEnv(), cbr.WithUserAgent("cbr-quickstart"))
		if err != nil {
			fmt.Fprintf(stderr, "quickstart: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stderr, "quickstart: -real: registering a new agent for host %s (%s) with CBR in %s, then marking it uninstalled; it stays in the account, marked uninstalled\n",
			hostName, hostIP, *region)
	} else {
		srv := cbrtest.NewServer()
		done = srv.Close
		fmt.Fprintf(stderr, "quickstart: running on the in-process fake CBR server at %s; nothing is sent to Huawei Cloud (use -real to talk to CBR)\n", srv.URL)
		if c, err = srv.Client(); err != nil {
			done()
			fmt.Fprintf(stderr, "quickstart: %v\n", err)
			return exitFailed
		}
	}
	defer done()

	if err := registerAndUninstall(ctx, c, stdout); err != nil {
		fmt.Fprintf(stderr, "quickstart: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// registerAndUninstall is what the quickstart shows: register an agent, mark
// it uninstalled, print it.
func registerAndUninstall(ctx context.Context, c *cbr.Client, stdout io.Writer) error {
	agent, err := c.RegisterAgent(ctx, cbr.AgentRegister{
		AgentID:      newAgentID(),
		HostName:     hostName,
		HostIP:       hostIP,
		HostOS:       "linux",
		AgentVersion: "1.0.0",
		AgentType:    cbr.AgentTypeNative,
	})
	if err != nil {
		return err
	}
	agent, err = c.UpdateAgent(ctx, agent.AgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(agent, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(out))
	return err
}

// newAgentID returns a random UUID (version 4), the form of agent IDs in the API's examples.
func newAgentID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
