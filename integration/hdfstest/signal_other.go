//go:build !unix

package hdfstest

import (
	"errors"
	"syscall"
)

var errUnsupported = errors.New("hdfstest: only Unix is supported")

func sysProcAttr() *syscall.SysProcAttr          { return nil }
func termGroup(int) error                        { return errUnsupported }
func killGroup(int) error                        { return errUnsupported }
func lockFile(string) (unlock func(), err error) { return nil, errUnsupported }

func checkPlatform() error { return errUnsupported }

func processAlive(int) bool { return true }
