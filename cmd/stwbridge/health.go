package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// health is `stwbridge health`: it asks a running stwbridge's HTTP listener for
// /healthz and exits 0 when it answers 200 (for container health checks, where the
// image has no shell or curl).
func health(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("stwbridge health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("STWBRIDGE_HTTP_LISTEN")
	if def == "" {
		def = "127.0.0.1:4318"
	}
	addr := fs.String("http-listen", def, "the HTTP listener of the stwbridge to check (env STWBRIDGE_HTTP_LISTEN)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	useTLS := fs.Bool("tls", os.Getenv("STWBRIDGE_TLS_CERT_FILE") != "",
		"the listener serves TLS (default: on when STWBRIDGE_TLS_CERT_FILE is set); the certificate is not verified: this checks liveness, not identity")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	scheme := "http://"
	c := &http.Client{Timeout: *timeout}
	if *useTLS {
		scheme = "https://"
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // #nosec: local liveness probe
	}
	url := scheme + localAddr(*addr) + "/healthz"
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "stwbridge health: %v\n", err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "stwbridge health: %s answered %s\n", url, resp.Status)
		return 1
	}
	return 0
}

// localAddr turns a listen address such as 0.0.0.0:4318 or :4318 into one to dial
// on this machine.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
