package broker

import "sync/atomic"

// preauthBudget bounds the memory that connections not yet authenticated may hold for their
// CONNECT bodies, all together: a flood of connections claiming large CONNECTs is refused with
// Server busy once the budget is spent, instead of growing the heap.
type preauthBudget struct {
	max  int64
	used atomic.Int64
}

func (b *preauthBudget) reserve(n int) bool {
	if b.used.Add(int64(n)) > b.max {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

func (b *preauthBudget) release(n int) { b.used.Add(-int64(n)) }

// PreauthBytes reports the memory claimed by CONNECTs being read now, before their clients
// are authenticated.
func (s *Server) PreauthBytes() int64 { return s.preauth.used.Load() }
