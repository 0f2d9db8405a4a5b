package faultproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo serves a line echo on loopback.
func echo(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return lis.Addr().String()
}

func newProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// roundTrip sends a line over c and reads it back.
func roundTrip(c net.Conn, line string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	s, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return s[:len(s)-1], nil
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialRoundTrip dials the proxy and round-trips a line; a reset may come at the dial
// or at the read.
func dialRoundTrip(p *Proxy, line string) (string, error) {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	return roundTrip(c, line)
}

func TestForwards(t *testing.T) {
	p := newProxy(t)
	c := dial(t, p)
	if got, err := roundTrip(c, "hello"); err != nil || got != "hello" {
		t.Fatalf("round trip: %q %v", got, err)
	}
	// The proxy counts a chunk after writing it, so the echo may arrive first.
	st := p.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.BytesUp != 6 && time.Now().Before(deadline); st = p.Stats() {
		time.Sleep(time.Millisecond)
	}
	if st.Accepted != 1 || st.BytesUp != 6 {
		t.Fatalf("stats %+v", st)
	}
	// Half-close: the echo's reply still arrives after our side stops writing.
	c2 := dial(t, p).(*net.TCPConn)
	io.WriteString(c2, "bye")
	c2.CloseWrite()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c2)
	if err != nil || string(b) != "bye" {
		t.Fatalf("after half-close: %q %v", b, err)
	}
}

func TestDelay(t *testing.T) {
	p := newProxy(t)
	c := dial(t, p)
	p.SetDelay(50 * time.Millisecond)
	start := time.Now()
	if _, err := roundTrip(c, "slow"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("round trip took %v, want >= 100ms (two delayed chunks)", d)
	}
	p.SetDelay(0)
	if _, err := roundTrip(c, "fast"); err != nil {
		t.Fatal(err)
	}
}

func TestDownUp(t *testing.T) {
	p := newProxy(t)
	live := dial(t, p)
	if _, err := roundTrip(live, "a"); err != nil {
		t.Fatal(err)
	}
	p.Down()
	if !p.IsDown() {
		t.Fatal("IsDown false after Down")
	}
	if _, err := roundTrip(live, "b"); err == nil {
		t.Fatal("live connection still works after Down")
	}
	if _, err := dialRoundTrip(p, "c"); err == nil {
		t.Fatal("new connection works while down")
	}
	p.Up()
	if got, err := roundTrip(dial(t, p), "d"); err != nil || got != "d" {
		t.Fatalf("after Up: %q %v", got, err)
	}
	if st := p.Stats(); st.Refused < 1 || st.Cut < 1 {
		t.Fatalf("stats %+v: want refused and cut", st)
	}
}

func TestTargetDownIsRefused(t *testing.T) {
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := lis.Addr().String()
	lis.Close()
	p, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := dialRoundTrip(p, "x"); err == nil {
		t.Fatal("round trip to a dead target worked")
	}
	if p.Stats().Refused != 1 {
		t.Fatalf("Refused %d", p.Stats().Refused)
	}
}

func TestFlap(t *testing.T) {
	p := newProxy(t)
	stop := make(chan struct{})
	done := p.Flap(10*time.Millisecond, 10*time.Millisecond, stop)
	var sawDown, sawUp bool
	deadline := time.Now().Add(5 * time.Second)
	for !(sawDown && sawUp) && time.Now().Before(deadline) {
		if p.IsDown() {
			sawDown = true
		} else {
			sawUp = true
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-done
	if !sawDown || !sawUp {
		t.Fatalf("flapping: saw down %v up %v", sawDown, sawUp)
	}
	if p.IsDown() {
		t.Fatal("Flap left the link down")
	}
	if _, err := roundTrip(dial(t, p), "after"); err != nil {
		t.Fatal(err)
	}
}

func TestCloseEndsConnections(t *testing.T) {
	p := newProxy(t)
	c := dial(t, p)
	if _, err := roundTrip(c, "a"); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := roundTrip(c, "b"); err == nil {
		t.Fatal("connection alive after Close")
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("still listening after Close")
	}
}
