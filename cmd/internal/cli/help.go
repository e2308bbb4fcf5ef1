package cli

import (
	"bytes"
	"strings"

	"github.com/spf13/cobra"
)

// RepeatedDefaults renders the --help of root and of each of its subcommands and
// returns the flag lines that mention "default" more than once: pflag appends
// "(default X)" to every flag whose default is not the zero value, so a
// description must not state that default again (or use the word otherwise).
// A flag whose default is the zero value may say what it means ("default: none").
// Each problem is "<command path>: <the flag's help line>".
func RepeatedDefaults(root *cobra.Command) []string {
	var problems []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		var out bytes.Buffer
		c.SetOut(&out)
		c.SetErr(&out)
		c.HelpFunc()(c, nil)
		for _, line := range flagLines(out.String()) {
			if strings.Count(strings.ToLower(line), "default") > 1 {
				problems = append(problems, c.CommandPath()+": "+strings.TrimSpace(line))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return problems
}

// flagLines returns the flags of a help text, one string per flag: the lines of
// the "Flags:" sections, a line not starting with "-" continuing the flag before.
func flagLines(help string) []string {
	var flags []string
	in := false
	for _, line := range strings.Split(help, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasSuffix(trimmed, "Flags:"):
			in = true
		case trimmed == "":
			in = false
		case !in:
		case strings.HasPrefix(trimmed, "-"):
			flags = append(flags, trimmed)
		case len(flags) > 0:
			flags[len(flags)-1] += " " + trimmed
		}
	}
	return flags
}
