package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

func quiet() Option { return WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

func payload(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("record-%03d;", i)), 1+i%5)
}

type rec struct {
	idx uint64
	p   []byte
}

func replayAll(t *testing.T, w *WAL) []rec {
	t.Helper()
	var out []rec
	if err := w.Replay(func(idx uint64, p []byte) error {
		out = append(out, rec{idx, append([]byte(nil), p...)})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

func mustOpen(t *testing.T, dir string, opts ...Option) *WAL {
	t.Helper()
	w, err := Open(dir, append([]Option{quiet()}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

func appendN(t *testing.T, w *WAL, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		idx, err := w.Append(payload(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if idx != uint64(i+1) {
			t.Fatalf("Append %d: index %d, want %d", i, idx, i+1)
		}
	}
}

func checkRecords(t *testing.T, got []rec, want []int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for k, i := range want {
		if got[k].idx != uint64(i+1) || !bytes.Equal(got[k].p, payload(i)) {
			t.Fatalf("record %d: index %d payload %q, want index %d payload %q", k, got[k].idx, got[k].p, i+1, payload(i))
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func TestAppendReplayReopen(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, WithSegmentBytes(200))
	appendN(t, w, 0, 30)
	checkRecords(t, replayAll(t, w), seq(0, 30))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if n := len(segFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments with SegmentBytes 200, want several", n)
	}
	w = mustOpen(t, dir, WithSegmentBytes(200))
	defer w.Close()
	checkRecords(t, replayAll(t, w), seq(0, 30))
	appendN(t, w, 30, 5) // numbering continues
	checkRecords(t, replayAll(t, w), seq(0, 35))
}

func TestAckTruncatesAndReplaysRest(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, WithSegmentBytes(200))
	appendN(t, w, 0, 40)
	before := w.Stats()
	if err := w.Ack(25); err != nil {
		t.Fatal(err)
	}
	after := w.Stats()
	if after.Segments >= before.Segments || after.Bytes >= before.Bytes {
		t.Fatalf("Ack freed nothing: before %+v after %+v", before, after)
	}
	if err := w.Ack(10); err != nil { // going back is a no-op
		t.Fatal(err)
	}
	if err := w.Ack(1000); err == nil {
		t.Fatal("Ack past the last record: no error")
	}
	checkRecords(t, replayAll(t, w), seq(25, 40))
	w.Close()
	w = mustOpen(t, dir, WithSegmentBytes(200))
	defer w.Close()
	if st := w.Stats(); st.Committed != 25 || st.LastIndex != 40 {
		t.Fatalf("after reopen: %+v, want committed 25 last 40", st)
	}
	checkRecords(t, replayAll(t, w), seq(25, 40))
	if err := w.Ack(40); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, w); len(got) != 0 {
		t.Fatalf("replayed %d after acking all", len(got))
	}
}

// TestCrashTornLastRecord cuts the file at every byte of the last record, as a crash in
// the middle of a write would: every earlier record must survive, and the log must
// accept appends again.
func TestCrashTornLastRecord(t *testing.T) {
	src := t.TempDir()
	w := mustOpen(t, src)
	appendN(t, w, 0, 9)
	sizeBefore := w.Stats().Bytes
	appendN(t, w, 9, 1)
	full := w.Stats().Bytes
	w.Close()
	seg := segFiles(t, src)[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for cut := sizeBefore; cut < full; cut++ {
		dir := t.TempDir()
		p := filepath.Join(dir, filepath.Base(seg))
		if err := os.WriteFile(p, data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		w := mustOpen(t, dir)
		checkRecords(t, replayAll(t, w), seq(0, 9))
		st := w.Stats()
		if cut > sizeBefore && st.TruncatedTails != 1 {
			t.Fatalf("cut at %d: TruncatedTails %d, want 1", cut, st.TruncatedTails)
		}
		if st.CorruptRecords != 0 {
			t.Fatalf("cut at %d: a torn tail counted as corruption", cut)
		}
		appendN(t, w, 9, 2) // the torn bytes are gone: indexes 10, 11 follow
		w.Close()
		w = mustOpen(t, dir)
		checkRecords(t, replayAll(t, w), seq(0, 11))
		if st := w.Stats(); st.TruncatedTails != 0 || st.CorruptRecords != 0 {
			t.Fatalf("cut at %d: second reopen found damage: %+v", cut, st)
		}
		w.Close()
	}
}

// TestCorruptionInTheMiddle flips bytes inside record 5 (of 10): the records before and
// after survive and the damage is counted.
func TestCorruptionInTheMiddle(t *testing.T) {
	for _, where := range []string{"header-length", "header-index", "payload", "crc"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			w := mustOpen(t, dir)
			appendN(t, w, 0, 5)
			start := w.Stats().Bytes
			appendN(t, w, 5, 5)
			w.Close()
			seg := segFiles(t, dir)[0]
			data, _ := os.ReadFile(seg)
			off := map[string]int64{"header-length": 1, "header-index": 6, "payload": headerLen + 3, "crc": 13}[where]
			data[start+off] ^= 0x5a
			if err := os.WriteFile(seg, data, 0o600); err != nil {
				t.Fatal(err)
			}
			w = mustOpen(t, dir)
			defer w.Close()
			want := append(seq(0, 5), seq(6, 10)...)
			checkRecords(t, replayAll(t, w), want)
			if st := w.Stats(); st.CorruptRecords != 1 || st.CorruptBytes <= 0 {
				t.Fatalf("stats %+v, want 1 corrupt region", st)
			}
			appendN(t, w, 10, 1)
		})
	}
}

// TestCorruptSegmentTailSkipsToNextSegment damages the end of a non-last segment: the
// following segments are kept, and the damage is counted as corruption.
func TestCorruptSegmentTailSkipsToNextSegment(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, WithSegmentBytes(150))
	appendN(t, w, 0, 20)
	w.Close()
	segs := segFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want >= 3", len(segs))
	}
	fi, _ := os.Stat(segs[0])
	if err := os.Truncate(segs[0], fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, dir, WithSegmentBytes(150))
	defer w.Close()
	got := replayAll(t, w)
	if len(got) != 19 || got[len(got)-1].idx != 20 {
		t.Fatalf("replayed %d records (last %v), want 19 ending at 20", len(got), got[len(got)-1].idx)
	}
	if st := w.Stats(); st.CorruptRecords != 1 {
		t.Fatalf("CorruptRecords %d, want 1", st.CorruptRecords)
	}
}

func TestDamagedCommitFileReplaysAll(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir)
	appendN(t, w, 0, 5)
	if err := w.Ack(3); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := os.WriteFile(filepath.Join(dir, commitFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, dir)
	defer w.Close()
	checkRecords(t, replayAll(t, w), seq(0, 5)) // at-least-once: more, never less
}

func TestBoundRefusesAndRecovers(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, WithMaxBytes(1000), WithSegmentBytes(300))
	defer w.Close()
	var n int
	var err error
	for n = 0; n < 1000; n++ {
		if _, err = w.Append(make([]byte, 50)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("after %d appends: %v, want ErrFull", n, err)
	}
	if st := w.Stats(); st.Refused != 1 || st.Bytes > 1000 {
		t.Fatalf("stats %+v: want 1 refused, bytes <= 1000", st)
	}
	if _, err := w.Append(make([]byte, 50)); !errors.Is(err, ErrFull) {
		t.Fatalf("second append at the bound: %v", err)
	}
	if st := w.Stats(); st.Refused != 2 {
		t.Fatalf("Refused %d, want 2", st.Refused)
	}
	// Acknowledging everything frees the space, including the segment being written
	// (freed at the next append that finds the log full).
	if err := w.Ack(w.Stats().LastIndex); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := w.Append(make([]byte, 50)); err != nil {
			t.Fatalf("append %d after ack: %v", i, err)
		}
	}
	if _, err := w.Append(make([]byte, 2000)); !errors.Is(err, ErrFull) {
		t.Fatalf("record bigger than the bound: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	w := mustOpen(t, t.TempDir(), WithMaxRecordBytes(10))
	defer w.Close()
	if _, err := w.Append(make([]byte, 11)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append 11 bytes: %v, want ErrTooLarge", err)
	}
	if _, err := w.Append(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
}

func TestReplayStopsAtError(t *testing.T) {
	w := mustOpen(t, t.TempDir())
	defer w.Close()
	appendN(t, w, 0, 5)
	boom := errors.New("boom")
	var seen int
	err := w.Replay(func(idx uint64, _ []byte) error {
		seen++
		if idx == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || seen != 3 {
		t.Fatalf("Replay: err %v after %d, want boom after 3", err, seen)
	}
}

// TestConcurrentAppendsGroupCommit: many goroutines append; every index is unique,
// everything replays after reopen, and fsyncs were shared.
func TestConcurrentAppendsGroupCommit(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, WithSegmentBytes(4096))
	const G, N = 16, 50
	var wg sync.WaitGroup
	idxs := make(chan uint64, G*N)
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < N; i++ {
				idx, err := w.Append([]byte(fmt.Sprintf("g%d-i%d", g, i)))
				if err != nil {
					t.Error(err)
					return
				}
				idxs <- idx
			}
		}(g)
	}
	wg.Wait()
	close(idxs)
	seen := map[uint64]bool{}
	for i := range idxs {
		if seen[i] {
			t.Fatalf("index %d given twice", i)
		}
		seen[i] = true
	}
	st := w.Stats()
	t.Logf("appends %d, fsyncs %d", st.Appended, st.Syncs)
	if st.Syncs >= st.Appended {
		t.Errorf("no group commit: %d fsyncs for %d appends", st.Syncs, st.Appended)
	}
	w.Close()
	w = mustOpen(t, dir, WithSegmentBytes(4096))
	defer w.Close()
	got := replayAll(t, w)
	if len(got) != G*N {
		t.Fatalf("replayed %d, want %d", len(got), G*N)
	}
	for k, r := range got {
		if r.idx != uint64(k+1) {
			t.Fatalf("record %d has index %d", k, r.idx)
		}
	}
}

// BenchmarkAppend measures durable appends per second with 64 concurrent appenders
// sharing fsyncs.
func BenchmarkAppend(b *testing.B) {
	w, err := Open(b.TempDir(), quiet())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	p := make([]byte, 512)
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.Append(p); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := w.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(float64(st.Appended)/float64(max(st.Syncs, 1)), "appends/fsync")
}

// FuzzOpen feeds arbitrary segment contents to Open and Replay: never a panic, and
// whatever replays has strictly increasing indexes.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	w, _ := Open(dir, quiet())
	for i := 0; i < 3; i++ {
		w.Append(payload(i))
	}
	w.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 1, segmentSuffix)))
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 1, segmentSuffix)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, quiet(), WithMaxRecordBytes(1<<16))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var last uint64
		w.Replay(func(idx uint64, _ []byte) error {
			if idx <= last {
				t.Fatalf("index %d after %d", idx, last)
			}
			last = idx
			return nil
		})
		if _, err := w.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLongGarbageIsSkippedQuickly: 4 MiB of random bytes between records (a damaged
// disk region) is crossed in linear time and the records after it are kept.
func TestLongGarbageIsSkippedQuickly(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir)
	appendN(t, w, 0, 3)
	w.Close()
	seg := segFiles(t, dir)[0]
	data, _ := os.ReadFile(seg)
	garbage := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	// Records 4 and 5 after the garbage, framed as Append frames them.
	tail := t.TempDir()
	w2 := mustOpen(t, tail)
	appendN(t, w2, 0, 5)
	w2.Close()
	tailData, _ := os.ReadFile(segFiles(t, tail)[0])
	var cut int
	for i := 0; i < 3; i++ {
		cut += headerLen + len(payload(i))
	}
	out := append(append(append([]byte(nil), data...), garbage...), tailData[cut:]...)
	if err := os.WriteFile(seg, out, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w = mustOpen(t, dir)
	defer w.Close()
	// A quadratic scan of 4 MiB would take hours; the bound is loose enough for a
	// busy machine running the race detector.
	if d := time.Since(start); d > 60*time.Second {
		t.Fatalf("Open took %v over 4 MiB of garbage", d)
	}
	checkRecords(t, replayAll(t, w), seq(0, 5))
	if st := w.Stats(); st.CorruptRecords != 1 || st.CorruptBytes != 4<<20 {
		t.Fatalf("stats %+v: want one corrupt region of 4 MiB", st)
	}
}
