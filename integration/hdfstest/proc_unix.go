//go:build unix && !linux

package hdfstest

import "syscall"

// sysProcAttr puts the JVM in its own process group, so Stop can signal it
// and its children together. Unlike Linux there is no parent-death signal: a
// test process killed without running Stop leaves the JVMs running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
