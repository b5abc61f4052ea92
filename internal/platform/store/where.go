package store

import (
	"fmt"
	"strings"
)

// Where builds the WHERE clause of a list query from the conditions that
// apply. A catch-all filter ("col = $2, or any when $2 is empty") keeps one
// statement text but hides col from the planner: a cursor condition such
// as id < $3 then scans from the start of the range instead of seeking the
// index, and every page of a long list costs more than the last.
type Where struct {
	conds []string
	args  []any
}

// And adds cond, in which each "?" stands for the parameter of the next
// of args.
func (w *Where) And(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// AndIf adds cond when arg is not empty.
func (w *Where) AndIf(cond, arg string) {
	if arg != "" {
		w.And(cond, arg)
	}
}

// String is the clause, "WHERE a AND b" (empty without conditions).
func (w *Where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return "WHERE " + strings.Join(w.conds, " AND ")
}

// Args are the parameters, in the order of their numbers.
func (w *Where) Args() []any { return w.args }
