// Command official registers an agent with the official SDK; it exists to measure the binary size.
package main

import (
	"fmt"
	"os"

	hcbasic "github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	hccbr "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cbr/v1"
	hcmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cbr/v1/model"
)

func main() {
	creds, err := hcbasic.NewCredentialsBuilder().WithAk(os.Getenv("AK")).WithSk(os.Getenv("SK")).WithProjectId(os.Args[2]).SafeBuild()
	if err != nil {
		panic(err)
	}
	hc, err := hccbr.CbrClientBuilder().WithEndpoints([]string{os.Args[1]}).WithCredential(creds).SafeBuild()
	if err != nil {
		panic(err)
	}
	r, err := hccbr.NewCbrClient(hc).RegisterAgent(&hcmodel.RegisterAgentRequest{Body: &hcmodel.AgentRegisterReq{Agent: &hcmodel.AgentRegister{AgentId: "a", HostName: "h", HostIp: "10.0.0.1", HostOs: "linux"}}})
	fmt.Println(r, err)
}
