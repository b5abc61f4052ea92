package httpapi

import "sort"

// Patterns returns every registered route pattern, such as
// "GET /api/v1/admin/dlq/{seq}", sorted: the built-in /healthz, /readyz and
// /metrics and all that Handle and HandleAPI added. The composition root's
// test compares them with the OpenAPI document, so the two cannot drift.
func (s *Server) Patterns() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.patterns))
	for p := range s.patterns {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
