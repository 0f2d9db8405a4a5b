package auth

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestValid(t *testing.T) {
	b, err := NewBearer("  s3cret\n")
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]bool{
		"Bearer s3cret":  true,
		"bearer s3cret":  true,
		"BEARER  s3cret": true,
		"Bearer s3cre":   false,
		"Bearer s3cret2": false,
		"Basic s3cret":   false,
		"s3cret":         false,
		"":               false,
		"Bearer ":        false,
	} {
		if got := b.Valid(h); got != want {
			t.Errorf("Valid(%q) = %v, want %v", h, got, want)
		}
	}
	if _, err := NewBearer(" \n"); err == nil {
		t.Fatal("empty token: no error")
	}
}

func TestLoadBearer(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := LoadBearer(file, "")
	if err != nil || !b.Valid("Bearer from-file") {
		t.Fatalf("from file: %v", err)
	}
	t.Setenv("STWBRIDGE_TEST_TOKEN", "from-env")
	b, err = LoadBearer("", "STWBRIDGE_TEST_TOKEN")
	if err != nil || !b.Valid("Bearer from-env") {
		t.Fatalf("from env: %v", err)
	}
	if b, err := LoadBearer("", ""); b != nil || err != nil {
		t.Fatalf("neither: %v %v, want nil nil", b, err)
	}
	for name, args := range map[string][2]string{
		"both":        {file, "STWBRIDGE_TEST_TOKEN"},
		"no file":     {filepath.Join(dir, "missing"), ""},
		"unset env":   {"", "STWBRIDGE_TEST_TOKEN_UNSET"},
		"empty file":  {writeFile(t, dir, "empty", ""), ""},
		"empty value": {"", "STWBRIDGE_TEST_EMPTY"},
	} {
		t.Setenv("STWBRIDGE_TEST_EMPTY", "")
		if _, err := LoadBearer(args[0], args[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testService answers EmptyCall and accepts streams; the rest is Unimplemented, which
// still proves a call got past the interceptors.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func TestGRPCInterceptors(t *testing.T) {
	b, _ := NewBearer("tok")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(b.UnaryServerInterceptor()), grpc.StreamInterceptor(b.StreamServerInterceptor()))
	testgrpc.RegisterTestServiceServer(srv, testService{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	defer srv.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testgrpc.NewTestServiceClient(cc)
	bg := context.Background()
	good := metadata.AppendToOutgoingContext(bg, "authorization", "Bearer tok")
	bad := metadata.AppendToOutgoingContext(bg, "authorization", "Bearer nope")

	if _, err := c.EmptyCall(good, &testgrpc.Empty{}); err != nil {
		t.Fatalf("good token: %v", err)
	}
	for _, ctx := range []context.Context{bg, bad} {
		if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("unary: %v, want Unauthenticated", err)
		}
	}
	stream := func(ctx context.Context) error {
		s, err := c.FullDuplexCall(ctx)
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}
	if err := stream(bad); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("stream: %v, want Unauthenticated", err)
	}
	if err := stream(good); status.Code(err) != codes.Unimplemented {
		t.Fatalf("stream with the token: %v, want it past the interceptor (Unimplemented)", err)
	}
	// Health checks need no token.
	hc := healthpb.NewHealthClient(cc)
	if _, err := hc.Check(bg, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check without a token: %v", err)
	}
	w, err := hc.Watch(bg, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = w.Recv()
	}
	if err != nil {
		t.Fatalf("health watch without a token: %v", err)
	}
	if b.Refused() != 3 {
		t.Fatalf("Refused %d, want 3", b.Refused())
	}
}

func TestHTTPMiddleware(t *testing.T) {
	b, _ := NewBearer("tok")
	srv := httptest.NewServer(b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()
	do := func(h string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := do("Bearer tok"); r.StatusCode != http.StatusNoContent {
		t.Fatalf("good: %d", r.StatusCode)
	}
	for _, h := range []string{"", "Bearer x", "Basic dG9r"} {
		r := do(h)
		if r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != `Bearer realm="stwbridge"` {
			t.Fatalf("%q: %d %q", h, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	}
	if b.Refused() != 3 {
		t.Fatalf("Refused %d", b.Refused())
	}
}
