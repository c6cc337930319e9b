package leaderless

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/transport/pb"
)

// HandleAntiEntropy serves another replica comparing a key range.
func (e *Engine) HandleAntiEntropy(ctx context.Context, req *pb.AntiEntropyRequest) (*pb.AntiEntropyResponse, error) {
	return nil, status.Error(codes.Unimplemented, "anti-entropy is being built")
}
