// Command quickstart registers a backup agent with CBR, marks it uninstalled,
// and prints the resulting agent as indented JSON.
//
// With HUAWEICLOUD_SDK_AK set it talks to CBR, configured by cbr.FromEnv:
//
//	HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK   the access key pair (required)
//	HUAWEICLOUD_SDK_REGION                   the region, such as ap-southeast-1 (required)
//	HUAWEICLOUD_SDK_SECURITY_TOKEN           for a temporary key pair
//	HUAWEICLOUD_SDK_PROJECT_ID               else looked up in IAM by the region's name
//	HUAWEICLOUD_SDK_REGION_CBR_{REGION}      another CBR endpoint, such as HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1
//	HUAWEICLOUD_SDK_IAM_ENDPOINT             another IAM endpoint
//
// Without HUAWEICLOUD_SDK_AK it starts the in-process fake server from package
// cbrtest and says so on stderr.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Stderr); err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run registers an agent, marks it uninstalled and writes the agent to stdout
// as indented JSON; notes for the user go to stderr.
func run(ctx context.Context, stdout, stderr io.Writer) error {
	c, closeFake, err := newClient(stderr)
	if err != nil {
		return err
	}
	defer closeFake()

	agent, err := c.RegisterAgent(ctx, cbr.AgentRegister{
		AgentID:      newAgentID(),
		HostName:     "ecs-00002",
		HostIP:       "10.10.0.2",
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

// newClient returns a client for CBR when credentials are in the environment,
// else for an in-process fake server, and a function that stops the fake.
func newClient(stderr io.Writer) (*cbr.Client, func(), error) {
	if os.Getenv("HUAWEICLOUD_SDK_AK") != "" {
		region := os.Getenv("HUAWEICLOUD_SDK_REGION")
		if region == "" {
			return nil, nil, fmt.Errorf("HUAWEICLOUD_SDK_AK is set: also set HUAWEICLOUD_SDK_REGION, such as ap-southeast-1")
		}
		c, err := cbr.NewClient(cbr.WithRegion(region), cbr.FromEnv(), cbr.WithUserAgent("cbr-quickstart"))
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(stderr, "quickstart: using CBR in %s with the HUAWEICLOUD_SDK_* credentials\n", region)
		return c, func() {}, nil
	}
	srv := cbrtest.NewServer()
	fmt.Fprintf(stderr, "quickstart: no HUAWEICLOUD_SDK_* credentials in the environment; using the in-process fake CBR server at %s\n", srv.URL)
	c, err := srv.Client()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return c, srv.Close, nil
}

// newAgentID returns a random UUID (version 4), the form of agent IDs in the API's examples.
func newAgentID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
