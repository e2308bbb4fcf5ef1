package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// docMarker is the line of docs/benchmarks.md after which each run's table is inserted
// (newest first).
const docMarker = "<!-- bench-peers runs: newest first; `make bench-peers` inserts each run below this line -->"

func fmtRate(v float64) string {
	switch {
	case v >= 100_000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

// ratio is a/b, "—" when b is missing.
func ratio(a, b *Engine) string {
	if a == nil || b == nil || b.PerSecond() == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a.PerSecond()/b.PerSecond())
}

// brokerPerMillion is the broker's CPU seconds per million units over the engine's run
// ("—" when unknown: a cluster given with --brokers).
func (e *Engine) brokerPerMillion() string {
	if e.BrokerCPU <= 0 || e.Units == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", e.BrokerCPU.Seconds()/float64(e.Units)*1e6)
}

// Table is the markdown table of the run, with the agreement notes.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s UTC, %d rides, load average %s before, %s after (`uptime`; 2 shared cores, broker on the same cores)\n\n",
		r.Date.Format("2006-01-02 15:04"), r.Rows, r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&b, "| engine | rides/s from process start | CPU s per 1M rides | peak RSS | broker CPU s per 1M rides | taxi-stream ÷ engine |\n")
	fmt.Fprintf(&b, "| --- | ---: | ---: | ---: | ---: | ---: |\n")
	row := func(e *Engine, extra string) {
		if e == nil {
			return
		}
		rate := fmtRate(e.PerSecond())
		if e.FromQueryStart > 0 {
			rate += fmt.Sprintf(" (%s from query start)", fmtRate(float64(e.Units)/e.FromQueryStart.Seconds()))
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.0f MiB | %s | %s |\n", e.Name, rate, e.CPUPerMillion(), e.RSSMiB, e.brokerPerMillion(), extra)
	}
	row(r.EOS, "1.00")
	row(r.ALO, ratio(r.EOS, r.ALO))
	if r.Spark != nil {
		extra := ratio(r.EOS, r.Spark)
		if r.Spark.FromQueryStart > 0 {
			extra += fmt.Sprintf(" (%.2f from query start)", r.EOS.PerSecond()/(float64(r.Spark.Units)/r.Spark.FromQueryStart.Seconds()))
		}
		row(r.Spark, extra)
	}
	row(r.Limit, ratio(r.EOS, r.Limit))
	row(r.FirstEOS, "— (not compared)")
	row(r.FirstALO, "— (not compared)")
	fmt.Fprintf(&b, "\n| producer | rows/s from process start | CPU s per 1M rows | peak RSS | broker CPU s per 1M rows | taxi-replay ÷ producer |\n")
	fmt.Fprintf(&b, "| --- | ---: | ---: | ---: | ---: | ---: |\n")
	prow := func(e *Engine, extra string) {
		if e == nil {
			return
		}
		note := ""
		if e.Note != "" {
			note = " (" + e.Note + ")"
		}
		fmt.Fprintf(&b, "| %s%s | %s | %.1f | %.0f MiB | %s | %s |\n", e.Name, note, fmtRate(e.PerSecond()), e.CPUPerMillion(), e.RSSMiB, e.brokerPerMillion(), extra)
	}
	prow(r.Replay, "1.00")
	prow(r.PyProducer, ratio(r.Replay, r.PyProducer))
	prow(r.FirstReplay, "— (not compared)")
	if len(r.AB) > 0 {
		fmt.Fprintf(&b, "\n| A/B run (same backlog, alternating) | rides/s from process start | CPU s per 1M rides | peak RSS | load average after |\n")
		fmt.Fprintf(&b, "| --- | ---: | ---: | ---: | --- |\n")
		for _, e := range r.AB {
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.0f MiB | %s |\n", e.Name, fmtRate(e.PerSecond()), e.CPUPerMillion(), e.RSSMiB, e.Note)
		}
	}
	b.WriteString("\n")
	if len(r.EOSRuns) > 1 {
		rates := func(runs []*Engine) string {
			var s []string
			for _, e := range runs {
				s = append(s, fmtRate(e.PerSecond()))
			}
			return strings.Join(s, ", ")
		}
		var ratios []string
		for i := range min(len(r.EOSRuns), len(r.ALORuns)) {
			ratios = append(ratios, ratio(r.EOSRuns[i], r.ALORuns[i]))
		}
		fmt.Fprintf(&b, "- Compared taxi-stream runs, %d rounds (the guarantee that runs first swaps each round): exactly_once %s rides/s; at_least_once %s; exactly_once ÷ at_least_once per round %s. The table shows each guarantee's median run.\n",
			len(r.EOSRuns), rates(r.EOSRuns), rates(r.ALORuns), strings.Join(ratios, ", "))
	}
	for _, a := range r.Agreement {
		fmt.Fprintf(&b, "- %s\n", a)
	}
	if r.SparkSkipped != "" {
		fmt.Fprintf(&b, "- Spark and the Python producer did not run: %s\n", firstLine(r.SparkSkipped))
	}
	for _, f := range r.ProfileFiles {
		if strings.HasSuffix(f, "allocs.pprof") {
			fmt.Fprintf(&b, "- Profiles of the exactly-once run: %s (CPU: `go tool pprof -top taxi-stream taxi-stream-cpu-*.pprof`)\n", f)
		}
	}
	return b.String()
}

// Line is the machine-readable last line.
func (r *Report) Line() string {
	f := func(e *Engine) string {
		if e == nil {
			return "NA"
		}
		return fmt.Sprintf("%.0f", e.PerSecond())
	}
	x := func(a, b *Engine) string {
		if a == nil || b == nil || b.PerSecond() == 0 {
			return "NA"
		}
		return fmt.Sprintf("%.2f", a.PerSecond()/b.PerSecond())
	}
	cpu, rss := "NA", "NA"
	if r.EOS != nil {
		cpu, rss = fmt.Sprintf("%.1f", r.EOS.CPUPerMillion()), fmt.Sprintf("%.0f", r.EOS.RSSMiB)
	}
	return fmt.Sprintf("bench-peers: taxi_stream=%s alo=%s spark=%s limit=%s spark_ratio=%s limit_share=%s eos_alo=%s cpu_per_m=%s rss_mib=%s",
		f(r.EOS), f(r.ALO), f(r.Spark), f(r.Limit), x(r.EOS, r.Spark), x(r.EOS, r.Limit), x(r.EOS, r.ALO), cpu, rss)
}

// WriteDoc inserts the run below docMarker in path.
func (r *Report) WriteDoc(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(old, []byte(docMarker))
	if i < 0 {
		return fmt.Errorf("%s has no line %q", path, docMarker)
	}
	i += len(docMarker)
	var b bytes.Buffer
	b.Write(old[:i])
	fmt.Fprintf(&b, "\n\n#### %s (`%s`)\n\n", r.Date.Format("2006-01-02 15:04 UTC"), r.Command)
	b.WriteString(r.Table())
	fmt.Fprintf(&b, "\n```\n%s\n```", r.Line())
	b.Write(old[i:])
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
