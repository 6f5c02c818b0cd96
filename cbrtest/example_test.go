package cbrtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"

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
