package hdfstest

import "syscall"

// sysProcAttr puts the JVM in its own process group, so Stop can signal it
// and its children together, and makes the kernel SIGKILL it when the test
// process dies without running Stop (go test timeout, SIGKILL, crash).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
