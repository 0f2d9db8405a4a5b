package processor

import (
	"time"

	"github.com/stwbridge/stwbridge/bridge"
)

// dropLogEvery is the least time between two log lines about dropped events.
const dropLogEvery = 10 * time.Second

// run is the background loop: one goroutine, one ticker, shared by the rename scan
// and the heartbeats. It also logs drops, so that the hot path never logs.
func (p *Processor) run() {
	defer close(p.done)
	t := time.NewTicker(p.period)
	defer t.Stop()
	var buf []*spanState
	var lastLog time.Time
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			n := p.tick.Add(1)
			renames := p.scanEvery > 0 && n%p.scanEvery == 0
			buf = p.scan(n, now, renames, buf)
			if d := p.dropped.Load(); d > p.dropsLogged && now.Sub(lastLog) >= dropLogEvery {
				p.opts.Logger.Warn("stwbridge processor: queue full, events dropped; raise WithMaxQueueEvents (OTEL_BSP_MAX_QUEUE_SIZE) or WithMaxQueueBytes if this persists",
					"dropped", d-p.dropsLogged, "dropped_total", d)
				p.dropsLogged, lastLog = d, now
			}
		}
	}
}

// scan visits every open span: with renames set it publishes UpdateName for spans
// renamed since their last published name; with tick > 0 it sends a Heartbeat on each
// stream that has been silent for more than hbTicks ticks. It returns buf for reuse.
func (p *Processor) scan(tick uint64, now time.Time, renames bool, buf []*spanState) []*spanState {
	buf = p.reg.appendAll(buf[:0])
	heartbeats := tick > 0 && p.hbTicks > 0
	for _, st := range buf {
		str := st.str
		str.mu.Lock()
		if renames && !st.ended && !st.suppressed {
			// Name takes the span's own lock: always after the stream's, as SetName
			// of a wrapped span does, so the two never deadlock.
			p.renameLocked(st, st.rw.Name(), now)
		}
		if heartbeats && str.seenTick != tick {
			str.seenTick = tick
			if !str.closed && tick-str.lastTick > p.hbTicks {
				if p.publishLocked(str, bridge.Event{
					TraceID:  str.traceID,
					SpanID:   str.root.spanID,
					Time:     now,
					Resource: str.root.res,
					Scope:    str.root.scope,
					Body:     heartbeat,
				}) {
					p.heartbeats.Add(1)
				}
			}
		}
		str.mu.Unlock()
	}
	clear(buf) // let ended spans be collected
	return buf
}
