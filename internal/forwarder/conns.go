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

// limitConns serves at most n connections of l at once: Accept waits while n are
// open, and the connections beyond wait in the listen backlog.
func limitConns(l net.Listener, n int) net.Listener { return netutil.LimitListener(l, n) }
