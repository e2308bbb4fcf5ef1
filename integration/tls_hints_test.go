package integration

import (
	"strings"
	"testing"
	"time"
)

// TestTLSMistakesGetAHint: a TLS client (SSL, SASL_SSL) on the broker's PLAINTEXT
// listener and a plaintext client on its SASL_SSL listener only see the
// connection close. Every program must still stop with status 1 and say what is
// wrong (docs/security.md, "Wrong credentials fail fast"), not "broker unreachable".
func TestTLSMistakesGetAHint(t *testing.T) {
	t.Parallel() // see TestMain
	e := newSecureEnv(t, nil)
	tp := testTopics(t)
	plaintextListener := strings.Join(e.cluster.Brokers(), ",")
	const (
		noTLS    = "the brokers do not speak TLS on this port"
		wantsTLS = "broker appears to be expecting TLS"
	)
	directions := []struct {
		name string
		args []string // how the client connects
		want []string // in the output
	}{
		{"SSL_client_on_PLAINTEXT_listener",
			[]string{"--brokers", plaintextListener, "--security-protocol", "SSL", "--tls-ca-file", e.pki.CAFile},
			[]string{noTLS, "--security-protocol"}},
		{"SASL_SSL_client_on_PLAINTEXT_listener",
			[]string{"--brokers", plaintextListener, "--security-protocol", "SASL_SSL", "--tls-ca-file", e.pki.CAFile,
				"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice", "--sasl-password-file", e.pwFile(t, "alice", saslUsers["alice"])},
			[]string{noTLS, "--security-protocol"}},
		{"PLAINTEXT_client_on_SASL_SSL_listener",
			[]string{"--brokers", e.brokers, "--security-protocol", "PLAINTEXT"},
			[]string{wantsTLS, "--security-protocol"}},
	}
	programs := []struct {
		name string
		bin  string
		args func(state string) []string // state: a name of the run's own
	}{
		// Both kafka-go paths: a metadata request (zones, like a replay) and the
		// admin client (cleanup).
		{"taxi-replay_zones", e.replayBin, func(string) []string {
			return []string{"zones", "--file", e.zoneFile, "--topic", tp.Zones, "--write-timeout", "10s"}
		}},
		{"taxi-replay_cleanup", e.replayBin, func(string) []string {
			return []string{"cleanup", "--yes", "--rides", tp.Rides, "--zones", tp.Zones, "--results", tp.Results,
				"--late", tp.Late, "--dead", tp.Dead, "--windows", tp.Windows, "--windows-table", "", "--write-timeout", "10s"}
		}},
		{"taxi-stream", e.streamBin, func(state string) []string {
			return append(e.streamArgs(tp, state), "--topic-wait", "5s")
		}},
		{"taxi-results", e.resultsBin, func(string) []string {
			return []string{"--topic", tp.Results, "--topic-wait", "5s"}
		}},
	}
	for _, d := range directions {
		t.Run(d.name, func(t *testing.T) {
			for _, prog := range programs {
				t.Run(prog.name, func(t *testing.T) {
					args := append(prog.args("state-"+d.name), d.args...)
					p := startProgram(t, prog.bin, nil, args...)
					// The failure comes within seconds; the bound only guards a hang
					// on a heavily loaded machine.
					code := p.wait(3 * time.Minute)
					out := p.out.String()
					last := strings.TrimSpace(tailLines(out, 1))
					if code != 1 {
						t.Fatalf("exit code %d, want 1; output:\n%s", code, tailLines(out, 20))
					}
					for _, w := range d.want {
						if !strings.Contains(last, w) {
							t.Errorf("the error does not say %q:\n%s", w, tailLines(out, 20))
						}
					}
					if strings.Contains(last, "broker unreachable") {
						t.Errorf("a reachable broker is reported unreachable:\n%s", last)
					}
					t.Logf("exit %d after %s: %s", code, p.took.Round(time.Millisecond), last)
				})
			}
		})
	}
}
