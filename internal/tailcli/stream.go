package tailcli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stwbridge/stwbridge/internal/live"
)

const (
	// keepAlive is the keep-alive interval the tail asks the server for.
	keepAlive = 5 * time.Second
	// idleTimeout is how long a silent stream is trusted: three keep-alives missed
	// and the connection is taken for dead.
	idleTimeout = 3 * keepAlive
	// maxLine bounds one NDJSON line.
	maxLine = 4 << 20
	// maxBatch is how many events are handed on at once.
	maxBatch = 256
)

// item is one line of the stream: the decoded event and the line itself.
type item struct {
	ev  live.Event
	raw []byte
}

// connState reports the connection to the view.
type connState struct {
	connected bool
	err       error         // why the last connection failed or ended
	retryIn   time.Duration // when not connected: the wait before the next attempt
}

// permanentError is a refusal that retrying cannot fix (a bad filter, a wrong URL).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// stream reads GET /v1/live at url, reconnecting with backoff when the stream drops,
// until ctx ends or the server refuses the request for good. It hands events to
// deliver in batches and connection changes to status; both are called from one
// goroutine.
type stream struct {
	url     string
	token   string // sent as "Authorization: Bearer <token>" when set
	client  *http.Client
	idle    time.Duration
	deliver func([]item)
	status  func(connState)
	bad     func(line []byte, err error) // a line that did not decode
	// initial and maximum reconnection delays; zero for the defaults.
	minDelay, maxDelay time.Duration
}

func (s *stream) run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = cmpOr(s.minDelay, 250*time.Millisecond)
	b.MaxInterval = cmpOr(s.maxDelay, 5*time.Second)
	b.Reset()
	for {
		connected, err := s.once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if connected {
			b.Reset()
		}
		wait := b.NextBackOff()
		s.status(connState{err: err, retryIn: wait})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// once runs one connection; connected says whether the server accepted it.
func (s *stream) once(ctx context.Context) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return false, permanentError{fmt.Errorf("bad --from URL: %w", err)}
	}
	req.Header.Set("Accept", live.ContentTypeNDJSON)
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("cannot reach %s: %w", req.URL.Host, err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			err = fmt.Errorf("%w (is stwbridge running, with --http-listen %s?)", err, req.URL.Host)
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("GET %s: %s: %s", s.url, resp.Status, strings.TrimSpace(string(body)))
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnauthorized, http.StatusForbidden:
			if resp.StatusCode == http.StatusNotFound {
				err = fmt.Errorf("%w (is --from a stwbridge with the live endpoint?)", err)
			}
			return false, permanentError{err}
		}
		return false, err
	}
	s.status(connState{connected: true})

	// A watchdog ends a connection that stays silent too long (keep-alives included):
	// a dead peer that never closed the socket.
	idle := cmpOr(s.idle, idleTimeout)
	watchdog := time.AfterFunc(idle, cancel)
	defer watchdog.Stop()

	lines := make(chan item, maxBatch)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := readLine(br)
			if err != nil {
				readErr <- err
				return
			}
			watchdog.Reset(idle)
			if len(line) == 0 {
				continue
			}
			it, err := decodeLine(line)
			if err != nil {
				if s.bad != nil {
					s.bad(line, err)
				}
				continue
			}
			if it.ev.Type == live.TypeKeepAlive {
				continue
			}
			select {
			case lines <- it:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
	}()
	batch := make([]item, 0, maxBatch)
	for it := range lines {
		batch = append(batch[:0], it)
	drain:
		for len(batch) < maxBatch {
			select {
			case more, ok := <-lines:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		s.deliver(batch)
	}
	err = <-readErr
	if errors.Is(err, io.EOF) {
		err = errors.New("the server ended the stream")
	} else if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("no data for %v: %w", idle, err)
	}
	return true, err
}

// readLine reads one line without its newline; lines longer than maxLine are an error.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return nil, fmt.Errorf("a line of the stream is over %d bytes", maxLine)
		}
		if err == nil {
			return bytes.TrimRight(buf, "\r\n"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if len(buf) > 0 && errors.Is(err, io.EOF) {
				return bytes.TrimRight(buf, "\r\n"), nil
			}
			return nil, err
		}
	}
}

// decodeLine decodes one NDJSON line of GET /v1/live.
func decodeLine(line []byte) (item, error) {
	var it item
	if err := json.Unmarshal(line, &it.ev); err != nil {
		return item{}, fmt.Errorf("not a live event: %w", err)
	}
	if it.ev.Type == "" {
		return item{}, errors.New("not a live event: no type")
	}
	it.raw = line
	return it, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
