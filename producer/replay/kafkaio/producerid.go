package kafkaio

import (
	"context"
	"fmt"
	"net"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/initproducerid"
)

// idempotentInit is an InitProducerId request without a transactional id.
//
// kafka-go's Client.InitProducerID sends the request to the transaction coordinator of its
// transactional id, found with FindCoordinator, even when the id is empty, as an idempotent
// producer's is (kafka-go's Transport routes every protocol.TransactionalMessage that way).
// Kafka answers InitProducerId without a transactional id on any broker, and a secured
// cluster would check a TRANSACTIONAL_ID ACL on the empty id for the FindCoordinator. This
// type has the request's fields but not its Transaction method, so the Transport sends it
// to any broker; kafka-go encodes a request by its ApiKey and field layout, which are the
// same.
type idempotentInit initproducerid.Request

func (*idempotentInit) ApiKey() protocol.ApiKey { return protocol.InitProducerId }

// initProducerID asks the cluster for a producer id and epoch (Kafka's idempotent
// producer: KIP-98; without a transactional id the broker allocates a fresh id).
func initProducerID(ctx context.Context, tr *kafka.Transport, addr net.Addr) (int64, int16, error) {
	// -1: no transactional id, so no transaction timeout; ProducerID/Epoch -1 ask for a new id (v3+).
	m, err := tr.RoundTrip(ctx, addr, &idempotentInit{TransactionTimeoutMs: -1, ProducerID: -1, ProducerEpoch: -1})
	if err != nil {
		return 0, 0, fmt.Errorf("InitProducerId: %w", err)
	}
	res, ok := m.(*initproducerid.Response)
	if !ok {
		return 0, 0, fmt.Errorf("InitProducerId: unexpected response %T", m)
	}
	if res.ErrorCode != 0 {
		return 0, 0, fmt.Errorf("InitProducerId: %w", kafka.Error(res.ErrorCode))
	}
	return res.ProducerID, res.ProducerEpoch, nil
}
