// Test-only: a client with Go's own resolver (no libc): COUNT lookups of NAME's
// A record, one after the other, each one query to SERVER port 53.
//
// usage: go_resolver SERVER NAME COUNT
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go_resolver SERVER NAME COUNT")
		os.Exit(2)
	}
	server, name := os.Args[1], os.Args[2]
	count, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", net.JoinHostPort(server, "53"))
		},
	}
	for i := 0; i < count; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// "ip4": one A query per lookup; a trailing dot: no search domains.
		_, err := resolver.LookupIP(ctx, "ip4", name+".")
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}
