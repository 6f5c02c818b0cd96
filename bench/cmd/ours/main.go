// Command ours registers an agent with this SDK and AK/SK signing; it exists to measure the binary size.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/cbrsdk/cbr"
)

func main() {
	c, err := cbr.NewClient(cbr.WithEndpoint(os.Args[1]), cbr.WithProjectID(os.Args[2]),
		cbr.WithCredentials(cbr.AKSK{AccessKey: os.Getenv("AK"), SecretKey: os.Getenv("SK")}))
	if err != nil {
		panic(err)
	}
	a, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{AgentID: "a", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"})
	fmt.Println(a, err)
}
