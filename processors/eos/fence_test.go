package eos

import (
	"testing"

	"github.com/IBM/sarama"
)

func TestIsMember(t *testing.T) {
	static := "node-2"
	members := map[string]*sarama.GroupMemberDescription{
		"m1": {ClientId: "taxi-stream-windows-node-1"},         // dynamic member: goka's client id
		"m2": {ClientId: "whatever", GroupInstanceId: &static}, // static member
	}
	for instance, want := range map[string]bool{
		"node-1": true,
		"node-2": true,
		"node-3": false, // departed: its transactions may be aborted
		"ode-1":  false, // a suffix of the name, not of "-" + the name
		"1":      true,  // "taxi-stream-windows-node-1" ends with "-1": an ambiguous short name counts as a member (never fence a live one)
	} {
		if got := isMember(members, instance); got != want {
			t.Errorf("isMember(%q) = %v, want %v", instance, got, want)
		}
	}
}
