//go:build race

package bridge

// plRaceEnabled tells pipeline tests that the race detector runs (it allocates).
const plRaceEnabled = true
