package hdfstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// addOpens are the java.base packages Hadoop 3.x reflects into; Java 17
// refuses that without --add-opens.
var addOpens = []string{
	"java.io", "java.lang", "java.lang.reflect", "java.math", "java.net", "java.nio",
	"java.text", "java.util", "java.util.concurrent", "java.util.zip",
	"sun.nio.ch", "sun.security.util", "sun.security.x509",
}

// jvm describes how to launch the Hadoop JVMs of one cluster.
type jvm struct {
	java      string
	classpath string
	heapMB    int
	user      string // HADOOP_USER_NAME, the HDFS superuser without Kerberos
	layout    layout
	extraArgs []string // JVM flags of a secure cluster (krbJVMArgs)
}

// args returns the java command line for mainClass. The flags trade peak
// speed for startup: C1 only, serial GC, the JDK's CDS archive.
func (j jvm) args(mainClass string, mainArgs ...string) []string {
	args := []string{
		"-Xmx" + strconv.Itoa(j.heapMB) + "m",
		"-Xss512k",
		"-XX:TieredStopAtLevel=1",
		"-XX:+UseSerialGC",
		"-Xshare:auto",
		"-XX:-UsePerfData",
		"-XX:ErrorFile=" + filepath.Join(j.layout.logs, "hs_err_%p.log"),
		"-Djava.net.preferIPv4Stack=true",
		"-Dhadoop.log.dir=" + j.layout.logs,
		"-Dlog4j.configuration=file:" + filepath.Join(j.layout.conf, "log4j.properties"),
	}
	for _, pkg := range addOpens {
		args = append(args, "--add-opens=java.base/"+pkg+"=ALL-UNNAMED")
	}
	args = append(args, j.extraArgs...)
	args = append(args, "-cp", j.classpath, mainClass)
	return append(args, mainArgs...)
}

// command returns the process for mainClass, logging stdout and stderr to
// logName in the log directory.
func (j jvm) command(ctx context.Context, logName, mainClass string, mainArgs ...string) (*exec.Cmd, *os.File, error) {
	logPath := filepath.Join(j.layout.logs, logName)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, fmt.Errorf("hdfstest: %w", err)
	}
	cmd := exec.CommandContext(ctx, j.java, j.args(mainClass, mainArgs...)...)
	cmd.Dir = j.layout.root
	cmd.Env = append(os.Environ(), "HADOOP_USER_NAME="+j.user)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	return cmd, logFile, nil
}

// run runs mainClass to completion (NameNode -format).
func (j jvm) run(ctx context.Context, logName, mainClass string, mainArgs ...string) error {
	cmd, logFile, err := j.command(ctx, logName, mainClass, mainArgs...)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hdfstest: %s %s: %w\n%s", mainClass, strings.Join(mainArgs, " "), err,
			tailFile(filepath.Join(j.layout.logs, logName), 30))
	}
	return nil
}

// process is a long-running JVM: the NameNode or the DataNode.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// start launches mainClass in its own process group.
func (j jvm) start(name, mainClass string) (*process, error) {
	logName := name + ".log"
	cmd, logFile, err := j.command(context.Background(), logName, mainClass)
	if err != nil {
		return nil, err
	}
	p := &process{
		name:    name,
		logPath: filepath.Join(j.layout.logs, logName),
		cmd:     cmd,
		logFile: logFile,
		done:    make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		// Linux sends the parent-death signal when the OS thread that forked
		// the child exits, not the process (golang/go#27505). Pin this
		// goroutine to its thread until the child is gone; the thread exits
		// with the goroutine because it is never unlocked.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		logFile.Close()
		return nil, fmt.Errorf("hdfstest: start %s: %w", name, err)
	}
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, SIGKILL after timeout, and waits
// for the exit. It reports an error only when the process had to be killed.
func (p *process) stop(timeout time.Duration) error {
	pid := p.cmd.Process.Pid
	if p.exited() {
		_ = killGroup(pid) // children the JVM may have left (du, df)
		return nil
	}
	_ = termGroup(pid)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		_ = killGroup(pid)
		return nil
	case <-timer.C:
	}
	_ = killGroup(pid)
	<-p.done
	return fmt.Errorf("hdfstest: %s (pid %d) ignored SIGTERM for %v and was killed", p.name, pid, timeout)
}

// describeExit explains why the process ended, with its log tail.
func (p *process) describeExit() string {
	return fmt.Sprintf("%s exited (%v); last lines of %s:\n%s", p.name, p.waitErr, p.logPath, tailFile(p.logPath, 40))
}

// tailFile returns the last n lines of a log file.
func tailFile(path string, n int) string {
	const maxRead = 64 << 10
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot stat %s: %v)", path, err)
	}
	off := max(info.Size()-maxRead, 0)
	buf := make([]byte, info.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return lastLines(string(buf), n)
}
