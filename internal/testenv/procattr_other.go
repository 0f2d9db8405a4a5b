//go:build !linux

package testenv

import "os/exec"

// dieWithParent does nothing where the parent-death signal does not exist.
func dieWithParent(*exec.Cmd) {}
