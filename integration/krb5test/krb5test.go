// Package krb5test runs a real MIT Kerberos KDC (Debian's krb5-kdc: krb5kdc,
// kdb5_util, kadmin.local) for one test, in a directory of its own, on a free
// loopback port: a realm, principals with passwords or random keys, keytabs.
//
// Tests that use it are skipped when the KDC programs are not installed
// (apt-get install krb5-kdc krb5-admin-server).
package krb5test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/childproc"
)

// KDC is a running KDC.
type KDC struct {
	Realm string
	// Config is a krb5.conf for clients of this KDC (TCP only, no DNS, no reverse
	// lookups: host names in principals are used as given, e.g. kafka/127.0.0.1).
	Config string
	dir    string
	env    []string
	cmd    *exec.Cmd
}

// programs are the MIT Kerberos tools Start needs.
var programs = []string{"krb5kdc", "kdb5_util", "kadmin.local"}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name) // not on every PATH
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found (apt-get install krb5-kdc krb5-admin-server)", name)
	}
	return p, nil
}

// Available reports why Start would skip (nil: the KDC programs are installed).
func Available() error {
	for _, p := range programs {
		if _, err := lookPath(p); err != nil {
			return err
		}
	}
	return nil
}

// Start creates realm's database in a temporary directory and starts krb5kdc; the
// test is skipped when the programs are missing. The KDC stops with the test.
func Start(t testing.TB, realm string) *KDC {
	t.Helper()
	return StartWith(t, realm, Options{})
}

// Options vary a KDC.
type Options struct {
	// ClockOffset runs the KDC with its clock this far from the machine's (libfaketime,
	// Debian's faketime package): clients then meet KRB_AP_ERR_SKEW as with a machine
	// whose clock is off. The test is skipped when libfaketime is missing.
	ClockOffset time.Duration
}

// libfaketime is Debian's faketime library (LD_PRELOAD).
const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

// StartWith is Start with options.
func StartWith(t testing.TB, realm string, opts Options) *KDC {
	t.Helper()
	if opts.ClockOffset != 0 {
		if _, err := os.Stat(libfaketime); err != nil {
			t.Skipf("no libfaketime for a KDC with a skewed clock (apt-get install faketime): %v", err)
		}
	}
	if err := Available(); err != nil {
		t.Skipf("no Kerberos KDC: %v", err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	k := &KDC{Realm: realm, Config: filepath.Join(dir, "krb5.conf"), dir: dir}
	kdcConf := filepath.Join(dir, "kdc.conf")
	write(t, kdcConf, fmt.Sprintf(`[kdcdefaults]
 kdc_ports = %[1]d
 kdc_tcp_ports = %[1]d
[realms]
 %[2]s = {
  database_name = %[3]s/principal
  key_stash_file = %[3]s/stash
  acl_file = %[3]s/kadm5.acl
  kdc_ports = %[1]d
  kdc_tcp_ports = %[1]d
  max_life = 1h
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }
[logging]
 kdc = FILE:%[3]s/kdc.log
`, port, realm, dir))
	write(t, k.Config, fmt.Sprintf(`[libdefaults]
 default_realm = %[2]s
 dns_lookup_realm = false
 dns_lookup_kdc = false
 rdns = false
 dns_canonicalize_hostname = false
 udp_preference_limit = 1
[realms]
 %[2]s = {
  kdc = 127.0.0.1:%[1]d
 }
`, port, realm))
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.Config, "KRB5_KDC_PROFILE="+kdcConf)
	k.run(t, "kdb5_util", "create", "-s", "-r", realm, "-P", "master-"+strconv.FormatInt(time.Now().UnixNano(), 36))

	bin, _ := lookPath("krb5kdc")
	k.cmd = exec.Command(bin, "-n", "-r", realm)
	k.cmd.Env = k.env
	if opts.ClockOffset != 0 {
		// FAKETIME "+3600s": the KDC's clock runs that far ahead of the machine's.
		k.cmd.Env = append(k.cmd.Env, "LD_PRELOAD="+libfaketime,
			fmt.Sprintf("FAKETIME=%+ds", int64(opts.ClockOffset/time.Second)), "FAKETIME_DONT_FAKE_MONOTONIC=1")
	}
	logf, err := os.Create(filepath.Join(dir, "krb5kdc.out"))
	if err != nil {
		t.Fatal(err)
	}
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan struct{})
	waited, err := childproc.Start(k.cmd)
	if err != nil {
		t.Fatalf("start krb5kdc: %v", err)
	}
	go func() { <-waited; logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = k.cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return k
		}
		select {
		case <-exited:
			t.Fatalf("krb5kdc exited: %s", k.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("krb5kdc does not listen on %d: %s", port, k.Log())
		}
	}
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (k *KDC) run(t testing.TB, name string, args ...string) {
	t.Helper()
	bin, err := lookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = k.env
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "error") {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// AddUser adds principal name@Realm with a password.
func (k *KDC) AddUser(t testing.TB, name, password string) {
	t.Helper()
	k.run(t, "kadmin.local", "-r", k.Realm, "-q", fmt.Sprintf("addprinc -pw %s %s", password, name))
}

// AddService adds principal name@Realm (e.g. kafka/127.0.0.1) with a random key.
func (k *KDC) AddService(t testing.TB, name string) {
	t.Helper()
	k.run(t, "kadmin.local", "-r", k.Realm, "-q", "addprinc -randkey "+name)
}

// Keytab writes the current keys of principal name to a new keytab file and
// returns its path. The keys are not changed (a user's password stays valid).
func (k *KDC) Keytab(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(k.dir, strings.ReplaceAll(name, "/", "_")+".keytab")
	k.run(t, "kadmin.local", "-r", k.Realm, "-q", fmt.Sprintf("ktadd -norandkey -k %s %s", path, name))
	return path
}

// Log returns the KDC's log.
func (k *KDC) Log() string {
	a, _ := os.ReadFile(filepath.Join(k.dir, "kdc.log"))
	b, _ := os.ReadFile(filepath.Join(k.dir, "krb5kdc.out"))
	return string(a) + string(b)
}
