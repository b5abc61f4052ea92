package bus

import (
	"net"
	"strconv"
	"strings"
)

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if port == 0 {
		port = -1 // nats-server reads 0 as its default port and -1 as "any free port"
	}
	return host, port, nil
}

func joinComma(s []string) string { return strings.Join(s, ",") }
