//go:build race

package processor

// raceEnabled: the race detector slows span creation tenfold; bursts are smaller.
const raceEnabled = true
