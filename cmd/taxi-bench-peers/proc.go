package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// doneMarker starts the line the Python programs print when they are done.
const doneMarker = "BENCH-PEERS-DONE "

// usage is what one measured process cost.
type usage struct {
	Wall   time.Duration // process start until done (not until exit)
	CPU    time.Duration // user + sys of the process and the children it waited for
	RSSMiB float64       // peak resident set size (getrusage maxrss: the largest of them)
}

// proc is a measured child process. Its stdout and stderr go to a log file; a stdout line
// starting with doneMarker is handed to doneLine.
type proc struct {
	name     string
	cmd      *exec.Cmd
	start    time.Time
	logPath  string
	exited   chan struct{}
	waitErr  error
	doneLine chan string
	stdout   chan string // every stdout line, when collect is set
}

// startProc starts cmd with its output in logPath. With collect, stdout lines are also
// sent to p.stdout (buffered; read them after exit with p.lines).
func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: pipe: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = w, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{}),
		doneLine: make(chan string, 1), stdout: make(chan string, 1<<16)}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	w.Close()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if strings.HasPrefix(line, doneMarker) {
				select {
				case p.doneLine <- strings.TrimPrefix(line, doneMarker):
				default:
				}
			}
			select {
			case p.stdout <- line:
			default:
			}
		}
		_, _ = io.Copy(io.Discard, r)
		r.Close()
	}()
	go func() {
		p.waitErr = cmd.Wait()
		<-scanned
		log.Close()
		close(p.stdout)
		close(p.exited)
	}()
	return p, nil
}

// waitDone waits until the process prints its done line and returns it with the time
// since start.
func (p *proc) waitDone(ctx context.Context, timeout time.Duration) (string, time.Duration, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-p.doneLine:
		return line, time.Since(p.start), nil
	case <-p.exited:
		select {
		case line := <-p.doneLine:
			return line, time.Since(p.start), nil
		default:
		}
		return "", 0, fmt.Errorf("%s exited before it was done: %v%s", p.name, p.waitErr, p.logTail())
	case <-t.C:
		p.kill()
		return "", 0, fmt.Errorf("%s not done after %s%s", p.name, timeout, p.logTail())
	case <-ctx.Done():
		p.kill()
		return "", 0, ctx.Err()
	}
}

// waitExit waits for the process to exit by itself (exit status 0).
func (p *proc) waitExit(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.kill()
		return fmt.Errorf("%s did not exit within %s%s", p.name, timeout, p.logTail())
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s: %w%s", p.name, p.waitErr, p.logTail())
	}
	return nil
}

// terminate sends SIGTERM and waits for a clean exit.
func (p *proc) terminate(ctx context.Context) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.waitExit(ctx, 90*time.Second)
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// usage returns the rusage of the exited process with wall as the measured time.
func (p *proc) usage(wall time.Duration) usage {
	u := usage{Wall: wall}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.RSSMiB = float64(ru.Maxrss) / 1024 // Linux: KiB
	}
	return u
}

// lines returns the stdout lines of an exited process.
func (p *proc) lines() []string {
	var out []string
	for l := range p.stdout {
		out = append(out, l)
	}
	return out
}

func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return fmt.Sprintf(" (log %s, tail:\n%s)", p.logPath, b)
}
