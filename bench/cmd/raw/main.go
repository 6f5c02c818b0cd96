// Command raw registers an agent with net/http alone; it exists to measure the binary size.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

func main() {
	body, _ := json.Marshal(map[string]any{"agent": map[string]string{"agent_id": "a", "host_name": "h", "host_ip": "10.0.0.1", "host_os": "linux"}})
	req, _ := http.NewRequest("POST", os.Args[1]+"/v3/"+os.Args[2]+"/agents", bytes.NewReader(body))
	req.Header.Set("X-Auth-Token", os.Getenv("TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	fmt.Println(out)
}
