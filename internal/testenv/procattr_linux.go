package testenv

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child get SIGKILL when the test process dies, so that a
// killed test run leaves no Collector behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
