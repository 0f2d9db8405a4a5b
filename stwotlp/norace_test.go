//go:build !race

package stwotlp

// raceEnabled tells allocation tests that the race detector runs (sync.Pool then
// drops items at random, and decoders are made anew).
const raceEnabled = false
