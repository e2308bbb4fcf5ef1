// Package childproc starts the processes the tests own (brokers, KDCs, programs
// under test) so that they die with the test binary but not before.
package childproc

import (
	"os/exec"
	"runtime"
)

// Start starts cmd from an OS thread that stays pinned until cmd has exited, and
// returns a channel that receives cmd.Wait's result. Linux sends a child's
// parent-death signal (SysProcAttr.Pdeathsig) when the thread that forked it exits,
// not the process (golang/go#27505): a Go thread that ended (a goroutine exiting
// while locked to it) SIGKILLed a test broker in the middle of a CI run.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the child
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
