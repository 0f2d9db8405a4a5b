// Package faultproxy is a loopback TCP proxy for fault tests: it forwards connections to
// a target and can slow them (a delay per chunk), take the link down (closing live
// connections and resetting new ones) and bring it up again, or flap on a schedule.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Stats count what the proxy did.
type Stats struct {
	Accepted  int64 // connections forwarded to the target
	Refused   int64 // connections reset because the link was down (or the target was)
	Cut       int64 // live connections closed when the link went down
	BytesUp   int64 // client to target
	BytesDown int64 // target to client
}

// Proxy forwards loopback TCP connections to a target. It is safe for concurrent use.
type Proxy struct {
	target string
	lis    net.Listener

	delay atomic.Int64 // per chunk, nanoseconds
	down  atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	accepted, refused, cut, up, dn atomic.Int64

	closed   chan struct{}
	closeOne sync.Once
	wg       sync.WaitGroup
}

// New listens on 127.0.0.1 (a free port) and forwards to target (host:port).
func New(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, lis: lis, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listen address (host:port).
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// SetDelay makes every chunk wait d before it is passed on, both ways. Zero: no delay.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Down takes the link down: live connections are closed and new ones reset, until Up.
func (p *Proxy) Down() {
	p.down.Store(true)
	p.mu.Lock()
	for c := range p.conns {
		reset(c)
		p.cut.Add(1)
	}
	p.mu.Unlock()
}

// Up brings the link back up.
func (p *Proxy) Up() { p.down.Store(false) }

// IsDown reports whether the link is down.
func (p *Proxy) IsDown() bool { return p.down.Load() }

// Flap alternates the link between up (for upFor) and down (for downFor), starting
// with down, until stop is closed or the proxy is closed; it leaves the link up. It
// returns at once; the returned channel closes when flapping has ended.
func (p *Proxy) Flap(upFor, downFor time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer p.Up()
		for {
			p.Down()
			if !p.wait(downFor, stop) {
				return
			}
			p.Up()
			if !p.wait(upFor, stop) {
				return
			}
		}
	}()
	return done
}

func (p *Proxy) wait(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
	case <-p.closed:
	}
	return false
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), Cut: p.cut.Load(), BytesUp: p.up.Load(), BytesDown: p.dn.Load()}
}

// Close stops listening, closes every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	var err error
	p.closeOne.Do(func() {
		close(p.closed)
		err = p.lis.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return err
}

// reset closes c with an RST, as a refused or broken link does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if p.down.Load() {
			p.refused.Add(1)
			reset(c)
			continue
		}
		t, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.refused.Add(1)
			reset(c)
			continue
		}
		if !p.track(c, t) {
			reset(c)
			t.Close()
			return
		}
		p.accepted.Add(1)
		p.wg.Add(2)
		left := new(atomic.Int32)
		left.Store(2)
		go p.pipe(t, c, &p.up, left)
		go p.pipe(c, t, &p.dn, left)
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		return false
	default:
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst chunk by chunk, delaying each chunk. At EOF it half-closes
// dst; on an error it closes both. The second of the pair to finish closes both.
func (p *Proxy) pipe(dst, src net.Conn, count *atomic.Int64, left *atomic.Int32) {
	defer p.wg.Done()
	defer func() {
		if left.Add(-1) == 0 {
			p.mu.Lock()
			delete(p.conns, src)
			delete(p.conns, dst)
			p.mu.Unlock()
			src.Close()
			dst.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); d > 0 && !p.wait(d, nil) {
				return
			}
			if p.down.Load() {
				src.Close()
				dst.Close()
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
			count.Add(int64(n))
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				tc.CloseWrite()
				return
			}
			dst.Close()
			return
		}
	}
}
