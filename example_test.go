package cbr_test

import (
	"context"
	"errors"
	"fmt"
	"log"
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
	// The fake answers the next two requests with 503 Service Unavailable.
	srv.InjectFaults(cbrtest.Fault{Status: 503}, cbrtest.Fault{Status: 503})
	c, err := srv.Client(cbr.WithRetry(cbr.RetryPolicy{
		MaxAttempts: 3,                     // the first try and two retries
		MinWait:     10 * time.Millisecond, // backoff base
		MaxWait:     100 * time.Millisecond,
	}))
	if err != nil {
		log.Fatal(err)
	}

	agent, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{
		AgentID: "a1", HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(agent.Status, "after", srv.Requests(), "attempts")
	// Output: normal after 3 attempts
}
