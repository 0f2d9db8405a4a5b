package forwarder

import (
	"net"
	"syscall"
	"testing"
)

// HTTP connections get a fixed kernel send buffer, which bounds what a /v1/live
// watcher that does not read holds in the kernel.
func TestHTTPSendBuffer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := (sendBufferListener{l, httpSendBuffer}).Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	if err := raw.Control(func(fd uintptr) { size, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil {
		t.Fatal(err)
	}
	// Linux reports twice the size set, for its bookkeeping.
	if size != httpSendBuffer && size != 2*httpSendBuffer {
		t.Fatalf("SO_SNDBUF %d, want %d", size, httpSendBuffer)
	}
}
