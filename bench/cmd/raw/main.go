// Command raw registers an agent with the fair baseline, net/http and
// encoding/json as a careful user would write them, signed with AK/SK; it
// exists to measure the binary size.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cbrsdk/cbr/internal/fair"
)

func main() {
	c := &fair.Client{HTTP: fair.HTTPClient(), AgentsURL: os.Args[1] + "/v3/" + os.Args[2] + "/agents",
		ProjectID: os.Args[2], UserAgent: "raw/1.0", AK: os.Getenv("AK"), SK: os.Getenv("SK"), Now: time.Now}
	a, err := c.RegisterAgent(context.Background(), fair.Register{AgentID: "a", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"})
	fmt.Println(a, err)
}
