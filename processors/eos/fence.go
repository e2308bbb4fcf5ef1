package eos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// A SIGKILLed instance leaves a transaction open. Until it is aborted, read_committed
// consumers of every partition it wrote to stop at its first record (the last
// stable offset), and fetching the offsets it added to the transaction answers
// UNSTABLE_OFFSET_COMMIT. Restarting the instance aborts it at once (the new producer
// with the same transactional id fences the old one); an instance that does not come
// back would hold the whole pipeline for the transaction timeout plus the broker's
// expiry check interval (10 s + up to 10 s by default), after the session timeout
// that made the group notice it.
//
// So when a generation starts, the runtime aborts the open transactions of its
// group's instances that are no longer members: it lists the ongoing transactions
// (KIP-664), keeps those whose transactional id is Group + "-" + an instance that is
// not in the group, and initialises a producer with each of these ids, which bumps the
// producer epoch and makes the coordinator abort the transaction (the same fencing
// a restart does). A member that was dropped but is still alive (a zombie) is
// fenced like that too: its next commit fails and its stage rejoins from the last
// commit. Errors (e.g. a missing DESCRIBE or WRITE ACL on the transactional ids) are
// logged; the transactions then end by timeout as before.

// fenceTimeout bounds the fencing of departed members at a generation start.
const fenceTimeout = 15 * time.Second

// fenceDeparted aborts the ongoing transactions of departed instances of the group
// and returns the transactional ids it fenced.
func (r *Runtime) fenceDeparted(ctx context.Context) ([]string, error) {
	prefix := r.cfg.Group + "-"
	if r.cfg.Mode != ExactlyOnce || !strings.HasPrefix(r.cfg.TransactionalID, prefix) {
		return nil, nil
	}
	ca, err := sarama.NewClusterAdmin(r.cfg.Brokers, r.consumerBase(""))
	if err != nil {
		return nil, err
	}
	defer ca.Close()
	admin, ok := ca.(sarama.TransactionClusterAdmin)
	if !ok {
		return nil, fmt.Errorf("sarama's cluster admin cannot list transactions")
	}
	txns, err := admin.ListTransactions([]string{"Ongoing"}, nil, -1)
	if err != nil {
		return nil, fmt.Errorf("list ongoing transactions: %w", err)
	}
	var candidates []string
	for _, tx := range txns {
		if tx.TransactionalID != r.cfg.TransactionalID && strings.HasPrefix(tx.TransactionalID, prefix) {
			candidates = append(candidates, tx.TransactionalID)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	// A transactional id is <group>-<instance>, and a group's name may itself start
	// with ours plus "-" (app "taxi" has group "taxi-ingest"; app "taxi-ingest" has
	// "taxi-ingest-ingest", whose ids start with "taxi-ingest-"). An id belongs to the
	// longest existing group that prefixes it: never fence another group's.
	all, err := admin.ListConsumerGroups()
	if err != nil {
		return nil, fmt.Errorf("list consumer groups: %w", err)
	}
	candidates = slices.DeleteFunc(candidates, func(txid string) bool {
		for g := range all {
			if len(g) > len(r.cfg.Group) && strings.HasPrefix(txid, g+"-") {
				return true
			}
		}
		return false
	})
	if len(candidates) == 0 {
		return nil, nil
	}
	// Described after listing: an instance that joins in between is seen as a member.
	groups, err := admin.DescribeConsumerGroups([]string{r.cfg.Group})
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", r.cfg.Group, err)
	}
	if len(groups) != 1 || groups[0].Err != sarama.ErrNoError {
		return nil, fmt.Errorf("describe group %s: %v", r.cfg.Group, groups)
	}
	var fenced []string
	for _, txid := range candidates {
		if isMember(groups[0].Members, strings.TrimPrefix(txid, prefix)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fenced, err
		}
		if err := r.fence(txid); err != nil {
			return fenced, fmt.Errorf("fence %s: %w", txid, err)
		}
		fenced = append(fenced, txid)
	}
	return fenced, nil
}

// isMember reports whether instance is in the group: as its static member id
// (group.instance.id) or as the suffix of a member's client id (goka's client ids
// end with "-" + the instance id).
func isMember(members map[string]*sarama.GroupMemberDescription, instance string) bool {
	for _, m := range members {
		if m.GroupInstanceId != nil && *m.GroupInstanceId == instance {
			return true
		}
		if m.ClientId == instance || strings.HasSuffix(m.ClientId, "-"+instance) {
			return true
		}
	}
	return false
}

// fence initialises a producer with txid, which aborts its open transaction.
func (r *Runtime) fence(txid string) error {
	cfg := r.cfg.Sarama()
	cfg.ClientID = "taxi-stream-fence"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Transaction.ID = txid
	cfg.Producer.Transaction.Timeout = r.cfg.TransactionTimeout
	// InitProducerId answers CONCURRENT_TRANSACTIONS until the abort is written.
	cfg.Producer.Transaction.Retry.Max = 100
	cfg.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
	p, err := sarama.NewAsyncProducer(r.cfg.Brokers, cfg)
	if err != nil {
		return err
	}
	return p.Close()
}
