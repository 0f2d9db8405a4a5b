package forwarder

import (
	"net"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/stwbridge/stwbridge/internal/config"
)

// grpcConnOptions bounds what one gRPC connection may hold, as the Collector's
// configgrpc: concurrent calls, keepalive pings both ways, and idle connections.
func grpcConnOptions(g config.GRPCReceiver) []grpc.ServerOption {
	sp, ep := g.Keepalive.ServerParameters, g.Keepalive.EnforcementPolicy
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(uint32(g.MaxConcurrentStreams)),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: sp.MaxConnectionIdle.D(),
			Time:              sp.Time.D(),
			Timeout:           sp.Timeout.D(),
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: ep.MinTime.D(), PermitWithoutStream: ep.PermitWithoutStream}),
	}
}

// httpSendBuffer is the kernel send buffer of an HTTP connection, in bytes: fixed, so
// that a /v1/live watcher that does not read holds 256 KiB of unsent data in the
// kernel, not the megabytes that autotuning gives loopback connections (and that
// would first cost the CPU to encode). Responses of the other paths are small.
const httpSendBuffer = 256 << 10

// limitConns serves at most n connections of l at once: Accept waits while n are
// open, and the connections beyond wait in the listen backlog. With sendBuffer > 0,
// each TCP connection's kernel send buffer is set to it.
func limitConns(l net.Listener, n, sendBuffer int) net.Listener {
	if sendBuffer > 0 {
		l = sendBufferListener{l, sendBuffer}
	}
	return netutil.LimitListener(l, n)
}

// sendBufferListener sets the kernel send buffer of the TCP connections it accepts.
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size) // best effort: the default still works
	}
	return c, err
}
