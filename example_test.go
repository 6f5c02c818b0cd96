package cbr_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

func ExampleNewClient() {
	c, err := cbr.NewClient(
		cbr.WithRegion("ap-southeast-1"),
		cbr.WithProjectID("f841e01fd2b14e7fa41b6ae7aa6b0594"),
		cbr.WithCredentials(cbr.Token("MIIZ...")), // a project-scoped IAM token
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c) // a client never prints its credentials

	_, err = cbr.NewClient(cbr.WithRegion("ap-southeast-1"), cbr.WithCredentials(cbr.Token("MIIZ...")))
	fmt.Println(err)
	// Output:
	// cbr.Client{endpoint: https://cbr.ap-southeast-1.myhuaweicloud.com/, project: f841e01fd2b14e7fa41b6ae7aa6b0594}
	// cbr: missing project ID: use WithProjectID, or WithRegion with AKSK, IAMPassword or ECSMetadata credentials
}

func ExampleClient_RegisterAgent() {
	srv := cbrtest.NewServer() // an in-process fake of CBR
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}

	agent, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{
		AgentID:      "489654f2-363b-4ebf-966a-bdf079d97114",
		HostName:     "ecs-00002",
		HostIP:       "10.10.0.2",
		HostOS:       "linux",
		AgentVersion: "1.0.0",
		AgentType:    cbr.AgentTypeNative,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(agent.AgentID, agent.HostName, agent.Status, agent.AgentType)
	// Output: 489654f2-363b-4ebf-966a-bdf079d97114 ecs-00002 normal native
}

func ExampleClient_UpdateAgent() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	const id = "489654f2-363b-4ebf-966a-bdf079d97114"
	if _, err := c.RegisterAgent(ctx, cbr.AgentRegister{AgentID: id, HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux"}); err != nil {
		log.Fatal(err)
	}

	// An installer marks its agent uninstalled when it removes it.
	agent, err := c.UpdateAgent(ctx, id, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(agent.AgentID, agent.Status)
	// Output: 489654f2-363b-4ebf-966a-bdf079d97114 uninstall
}

func ExampleAPIError() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}

	_, err = c.UpdateAgent(context.Background(), "no-such-agent", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})

	// Match the kind of failure with errors.Is ...
	fmt.Println("not found:", errors.Is(err, cbr.ErrNotFound))
	// ... and get the details with errors.As.
	var apiErr *cbr.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Code, apiErr.Message)
		fmt.Println("has request id:", apiErr.RequestID != "")
	}
	// Output:
	// not found: true
	// 404 BackupService.7410 Agent no-such-agent not found.
	// has request id: true
}

func ExampleValidationError() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}

	_, err = c.RegisterAgent(context.Background(), cbr.AgentRegister{
		AgentID: "a1", HostName: "ecs-00002", HostIP: "ecs-00002.internal", HostOS: "linux",
	})
	fmt.Println(err)
	fmt.Println("invalid request:", errors.Is(err, cbr.ErrInvalidRequest))
	var v *cbr.ValidationError
	if errors.As(err, &v) {
		fmt.Println("field:", v.Field)
	}
	fmt.Println("requests sent:", srv.Requests())
	// Output:
	// cbr: register agent: invalid host_ip: is not an IPv4 or IPv6 address
	// invalid request: true
	// field: host_ip
	// requests sent: 0
}

func ExampleWithRetry() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	// The fake throttles the next request, then fails the one after.
	srv.InjectFaults(cbrtest.Fault{Status: 429}, cbrtest.Fault{Status: 503})
	c, err := srv.Client(cbr.WithRetry(cbr.RetryPolicy{
		MaxAttempts:     3,                     // failures: the first try and two retries
		MinWait:         10 * time.Millisecond, // backoff base after a failure
		MaxWait:         100 * time.Millisecond,
		ThrottleMinWait: 10 * time.Millisecond, // throttling is waited out until the deadline
		ThrottleMaxWait: 100 * time.Millisecond,
	}))
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := c.ListAgents(ctx, cbr.ListAgentsOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range srv.RequestLog() {
		fmt.Println(r.Method, r.Path, r.Status)
	}
	fmt.Println(len(list.Agents), "agents")
	// Output:
	// GET agents 429
	// GET agents 503
	// GET agents 200
	// 0 agents
}

func ExampleClient_Agents() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"agent-a", "agent-b", "agent-c"} {
		if _, err := c.RegisterAgent(ctx, cbr.AgentRegister{AgentID: id, HostName: id, HostIP: "10.10.0.2", HostOS: "linux"}); err != nil {
			log.Fatal(err)
		}
	}

	// Changing agents while ranging over them is safe: Agents lists every
	// page before it yields the first agent, so no agent is skipped.
	for a, err := range c.Agents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusNormal}) {
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.UpdateAgent(ctx, a.AgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall}); err != nil {
			log.Fatal(err)
		}
		fmt.Println("uninstalled", a.AgentID)
	}
	// Output:
	// uninstalled agent-a
	// uninstalled agent-b
	// uninstalled agent-c
}

// setenv sets environment variables and returns a function that restores
// them. Examples never run in parallel with tests, which makes this safe
// here; a test would use t.Setenv, and a program reads the environment it
// was started with.
func setenv(vars map[string]string) (restore func()) {
	old := make(map[string]*string, len(vars))
	for name, value := range vars {
		if v, ok := os.LookupEnv(name); ok {
			old[name] = &v
		} else {
			old[name] = nil
		}
		os.Setenv(name, value)
	}
	return func() {
		for name, v := range old {
			if v == nil {
				os.Unsetenv(name)
			} else {
				os.Setenv(name, *v)
			}
		}
	}
}

func ExampleFromEnv() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	// What an installer's environment holds, as the official SDKs read it.
	// HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1 points the region at the
	// fake here; without it the client calls the region's endpoint,
	// https://cbr.ap-southeast-1.myhuaweicloud.com.
	defer setenv(map[string]string{
		"HUAWEICLOUD_SDK_AK":                        srv.AccessKey,
		"HUAWEICLOUD_SDK_SK":                        srv.SecretKey,
		"HUAWEICLOUD_SDK_SECURITY_TOKEN":            "",
		"HUAWEICLOUD_SDK_PROJECT_ID":                srv.ProjectID,
		"HUAWEICLOUD_SDK_IAM_ENDPOINT":              "",
		"HUAWEICLOUD_SDK_REGION":                    "ap-southeast-1",
		"HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1": srv.URL,
	})()

	// FromEnv fills in what the other options leave unset.
	c, err := cbr.NewClient(cbr.FromEnv(), cbr.WithUserAgent("my-installer/2.1"))
	if err != nil {
		log.Fatal(err)
	}
	agent, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{
		AgentID: "489654f2-363b-4ebf-966a-bdf079d97114", HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(agent.AgentID, agent.Status)

	// A mistyped region is an error that names the nearest known one.
	os.Setenv("HUAWEICLOUD_SDK_REGION", "ap-southeast1")
	_, err = cbr.NewClient(cbr.FromEnv())
	fmt.Println(err)
	// Output:
	// 489654f2-363b-4ebf-966a-bdf079d97114 normal
	// cbr: FromEnv: HUAWEICLOUD_SDK_REGION: unknown region "ap-southeast1" (did you mean ap-southeast-1?): give its endpoint with WithEndpoint
}

func ExampleAKSK() {
	srv := cbrtest.NewServer()
	defer srv.Close()

	// A permanent key pair; set SecurityToken too for temporary keys. Every
	// attempt is signed afresh with SDK-HMAC-SHA256.
	keys := cbr.AKSK{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	c, err := cbr.NewClient(
		cbr.WithEndpoint(srv.URL), // for CBR itself: cbr.WithRegion("ap-southeast-1")
		cbr.WithProjectID(srv.ProjectID),
		cbr.WithCredentials(keys),
	)
	if err != nil {
		log.Fatal(err)
	}
	agent, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{
		AgentID: "489654f2-363b-4ebf-966a-bdf079d97114", HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(agent.Status)

	// Keys print redacted, with every fmt verb and in logs.
	fmt.Printf("%v\n", cbr.AKSK{AccessKey: "AKEXAMPLEAKEXAMPLE00", SecretKey: "SKEXAMPLE", SecurityToken: "token"})
	// Output:
	// normal
	// cbr.AKSK{AccessKey: AKEX****, SecretKey: REDACTED, SecurityToken: REDACTED}
}

func ExampleAgentRegister_Validate() {
	// An installer checks its input before anything remote happens.
	in := cbr.AgentRegister{AgentID: "489654f2-363b-4ebf-966a-bdf079d97114", HostName: "ecs-00002", HostIP: "10.10.0", HostOS: "linux"}
	fmt.Println(in.Validate())
	fmt.Println(cbr.AddPathsRequest{Paths: []string{"relative/path"}}.Validate())
	// Output:
	// cbr: register agent: invalid host_ip: is not an IPv4 or IPv6 address
	// cbr: add agent paths: invalid add_path: "relative/path" is not an absolute POSIX path or a Windows drive path
}

func ExampleNearestRegions() {
	region := "ap-southeast1" // from a command line, say
	if !slices.Contains(cbr.Regions(), region) {
		fmt.Printf("unknown region %q; did you mean %s?\n", region, strings.Join(cbr.NearestRegions(region), " or "))
	}
	// Output: unknown region "ap-southeast1"; did you mean ap-southeast-1?
}

func ExampleWithLogger() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	srv.InjectFaults(cbrtest.Fault{Status: 503})
	// Leave out what changes from run to run, to print a stable example.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration", "wait", "request_id":
				return slog.Attr{}
			}
			return a
		},
	}))
	c, err := srv.Client(cbr.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{Limit: 10}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// level=WARN msg="cbr: retrying" op="list agents" attempt=1 reason="503 Service Unavailable"
	// level=INFO msg="cbr: call" op="list agents" method=GET path=/v3/f841e01fd2b14e7fa41b6ae7aa6b0594/agents status=200 attempts=2
}
