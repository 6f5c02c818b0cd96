package cbrtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// uninstall is code under test: it marks an agent uninstalled and treats an
// agent CBR does not know as already gone.
func uninstall(ctx context.Context, c *cbr.Client, agentID string) error {
	_, err := c.UpdateAgent(ctx, agentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	if errors.Is(err, cbr.ErrNotFound) {
		return nil
	}
	return err
}

func Example() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// An agent CBR does not know.
	fmt.Println(uninstall(ctx, c, "unknown"))

	// A registered agent, with one dropped connection on the way.
	if _, err := c.RegisterAgent(ctx, cbr.AgentRegister{AgentID: "a1", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"}); err != nil {
		log.Fatal(err)
	}
	srv.InjectFaults(cbrtest.Fault{Drop: true})
	fmt.Println(uninstall(ctx, c, "a1"))

	a, _ := srv.Agent("a1")
	fmt.Println(a.AgentID, a.Status, srv.Requests())
	// Output:
	// <nil>
	// <nil>
	// a1 uninstall 4
}

// A fault with AfterHandling fails a request that took effect: the client
// cannot know whether it did. Here the uninstall is answered 503 although
// the agent was uninstalled; the SDK finds that out and reports success.
func ExampleFault() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.RegisterAgent(ctx, cbr.AgentRegister{AgentID: "a1", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"}); err != nil {
		log.Fatal(err)
	}

	// The first PUT of agents/a1 takes effect, then is answered 503.
	srv.InjectFaults(cbrtest.Fault{Method: "PUT", Path: "agents/a1", Status: 503, AfterHandling: true})
	_, err = c.UpdateAgent(ctx, "a1", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	fmt.Println("update:", err)

	a, _ := srv.Agent("a1")
	fmt.Println("stored:", a.Status)
	first := srv.RequestLog()[1]
	fmt.Println("first answer:", first.Method, first.Path, first.Status)
	// Output:
	// update: <nil>
	// stored: uninstall
	// first answer: PUT agents/a1 503
}

// SetAgents seeds a fleet in any state, and SetClock and Advance control the
// server's time, so that a test of "silent for 30 days" needs no sleep.
func ExampleServer_SetAgents() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	srv.SetClock(func() time.Time { return now })
	err := srv.SetAgents(
		cbr.Agent{AgentID: "silent", HostName: "db-1", LastActiveTime: now.AddDate(0, 0, -45)},
		cbr.Agent{AgentID: "busy", HostName: "web-1", LastActiveTime: now.Add(-time.Hour)},
		cbr.Agent{AgentID: "never", HostName: "new-1"}, // unknown activity: null on the wire
		cbr.Agent{AgentID: "gone", HostName: "old-1", Status: cbr.AgentStatusUninstall},
	)
	if err != nil {
		log.Fatal(err)
	}
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	srv.Advance(24 * time.Hour) // a day later
	if _, err := c.RegisterAgent(ctx, cbr.AgentRegister{AgentID: "fresh", HostName: "app-1", HostIP: "10.0.0.9", HostOS: "linux"}); err != nil {
		log.Fatal(err)
	}
	for a, err := range c.Agents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusNormal}) {
		if err != nil {
			log.Fatal(err)
		}
		silent := "unknown"
		if !a.LastActiveTime.IsZero() {
			silent = srv.Now().Sub(a.LastActiveTime).String()
		}
		fmt.Printf("%-6s %-5s silent %s\n", a.AgentID, a.HostName, silent)
	}
	// Output:
	// busy   web-1 silent 25h0m0s
	// fresh  app-1 silent 0s
	// never  new-1 silent unknown
	// silent db-1  silent 1104h0m0s
}

// RequestLog shows what reached the server, credentials redacted, for
// assertions at the wire.
func ExampleServer_RequestLog() {
	srv := cbrtest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.SetAgents(cbr.Agent{AgentID: "a1"}, cbr.Agent{AgentID: "a2"}); err != nil {
		log.Fatal(err)
	}

	srv.InjectFaults(cbrtest.Fault{Method: "GET", Status: 502})
	if _, err := c.ListAgents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusNormal}); err != nil {
		log.Fatal(err)
	}
	if _, err := c.UpdateAgent(ctx, "a2", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall}); err != nil {
		log.Fatal(err)
	}
	for _, r := range srv.RequestLog() {
		if r.Query != "" {
			r.Path += "?" + r.Query
		}
		fmt.Println(r.Status, r.Method, r.Path)
	}
	// Output:
	// 502 GET agents?offset=0&status=normal
	// 200 GET agents?offset=0&status=normal
	// 200 PUT agents/a2
}
