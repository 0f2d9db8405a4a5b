// Package auth secures stwbridge's receivers: bearer-token authentication for gRPC and
// HTTP (token from a file or an environment variable, compared in constant time), and
// the TLS/mTLS server configuration built from certificate files.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Realm is the realm named in WWW-Authenticate.
const Realm = "stwbridge"

// HealthService is the gRPC health service's method prefix: health checks are answered
// without a token, so that orchestrators can probe the listener.
const HealthService = "/grpc.health.v1.Health/"

// Bearer checks "Authorization: Bearer <token>" on gRPC calls and HTTP requests, and
// counts what it refuses. It is safe for concurrent use.
type Bearer struct {
	sum     [sha256.Size]byte // of the token: comparing digests hides the token's length
	refused atomic.Int64
}

// NewBearer returns a Bearer accepting token. Surrounding white space is trimmed; an
// empty token is an error.
func NewBearer(token string) (*Bearer, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, errors.New("auth: the bearer token is empty; put a secret in the token file or variable")
	}
	return &Bearer{sum: sha256.Sum256([]byte(token))}, nil
}

// LoadBearer reads the token from file when file is set, else from the environment
// variable env. It returns nil and no error when neither is set (authentication off).
func LoadBearer(file, env string) (*Bearer, error) {
	switch {
	case file != "" && env != "":
		return nil, errors.New("auth: set the bearer token file or the token variable, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("auth: read bearer token file: %w", err)
		}
		bb, err := NewBearer(string(b))
		if err != nil {
			return nil, fmt.Errorf("%w (file %s)", err, file)
		}
		return bb, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, fmt.Errorf("auth: bearer token variable %s is not set", env)
		}
		bb, err := NewBearer(v)
		if err != nil {
			return nil, fmt.Errorf("%w (variable %s)", err, env)
		}
		return bb, nil
	}
	return nil, nil
}

// Valid reports whether an Authorization header value carries the token. The scheme is
// matched case-insensitively; the token in constant time.
func (b *Bearer) Valid(authorization string) bool {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], b.sum[:]) == 1
}

// Refused returns how many requests were refused as unauthenticated.
func (b *Bearer) Refused() int64 { return b.refused.Load() }

func (b *Bearer) checkContext(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if b.Valid(v) {
			return nil
		}
	}
	b.refused.Add(1)
	return status.Error(codes.Unauthenticated, "missing or wrong bearer token: send metadata \"authorization: Bearer <token>\"")
}

// UnaryServerInterceptor refuses unary calls without the token with Unauthenticated
// (health checks excepted).
func (b *Bearer) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, HealthService) {
			return handler(ctx, req)
		}
		if err := b.checkContext(ctx); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor refuses streams without the token with Unauthenticated
// (health watches excepted).
func (b *Bearer) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if strings.HasPrefix(info.FullMethod, HealthService) {
			return handler(srv, ss)
		}
		if err := b.checkContext(ss.Context()); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// Middleware answers 401 with WWW-Authenticate to requests without the token.
func (b *Bearer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, v := range r.Header.Values("Authorization") {
			if b.Valid(v) {
				next.ServeHTTP(w, r)
				return
			}
		}
		b.refused.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
		http.Error(w, "missing or wrong bearer token: send \"Authorization: Bearer <token>\"", http.StatusUnauthorized)
	})
}
