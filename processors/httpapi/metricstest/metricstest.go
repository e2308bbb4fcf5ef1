// Package metricstest reads a Prometheus text exposition (what /metrics serves)
// into a flat map, for tests that check metric values.
package metricstest

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Parse returns "name{label=value,...}" (labels sorted; no braces without labels)
// -> value for counters and gauges; a summary gives name_count{...} and name_sum{...}.
func Parse(r io.Reader) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics do not parse: %w", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			suffix := ""
			if len(labels) > 0 {
				suffix = "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[name+suffix] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name+suffix] = m.Gauge.GetValue()
			case m.Summary != nil:
				out[name+"_count"+suffix] = float64(m.Summary.GetSampleCount())
				out[name+"_sum"+suffix] = m.Summary.GetSampleSum()
			}
		}
	}
	return out, nil
}
