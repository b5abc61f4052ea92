package workflows

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"io/fs"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/rule"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "workflows"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Workflow lifecycle: created -> active <-> paused.
const (
	StatusCreated = "created"
	StatusActive  = "active"
	StatusPaused  = "paused"
)

var statuses = []string{StatusCreated, StatusActive, StatusPaused}

// Run statuses. A run rests only in waiting or held between the
// transactions that move it; the others are final.
const (
	// RunWaiting waits in a delay or wait_until node.
	RunWaiting = "waiting"
	// RunHeld woke while its workflow was paused; it goes on when the
	// workflow is activated again.
	RunHeld        = "held"
	RunCompleted   = "completed"
	RunFailed      = "failed"
	RunGoalReached = "goal_reached"
)

var runStatuses = []string{RunWaiting, RunHeld, RunCompleted, RunFailed, RunGoalReached}

// Wait kinds of a waiting run, besides the message events it may await.
const (
	waitDelay = "delay"
	waitRule  = "rule"
)

// Workflow is a workflow at its current (or a requested) version.
type Workflow struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Version int64  `json:"version"`
	Definition
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Input creates or edits a workflow: its name and definition.
type Input struct {
	Name string `json:"name"`
	Definition
}

// Run is one contact's way through one workflow version.
type Run struct {
	ID         string     `json:"id"`
	WorkflowID string     `json:"workflowId"`
	Version    int64      `json:"version"`
	ContactID  string     `json:"contactId"`
	Status     string     `json:"status"`
	NodeID     string     `json:"nodeId,omitempty"`
	Step       int64      `json:"step"`
	WaitKind   string     `json:"waitKind,omitempty"`
	WakeAt     *time.Time `json:"wakeAt,omitempty"`
	Trigger    string     `json:"trigger"`
	GoalID     string     `json:"goalId,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	StartedAt  time.Time  `json:"startedAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	EndedAt    *time.Time `json:"endedAt,omitempty"`
	// Path is the nodes the run entered, in order (on a single run's read).
	Path []Step `json:"path,omitempty"`

	tenantID       string
	waitMessageID  string
	heldBranch     string
	triggerEventID string
	correlationID  string
}

func (r *Run) tenant() string { return r.tenantID }

func (r *Run) ended() bool { return r.Status != RunWaiting && r.Status != RunHeld }

// Step is one node a run entered, and the branch it left by (empty while
// the run is still in it).
type Step struct {
	Step      int64      `json:"step"`
	NodeID    string     `json:"nodeId"`
	NodeType  string     `json:"nodeType"`
	Branch    string     `json:"branch,omitempty"`
	MessageID string     `json:"messageId,omitempty"`
	EnteredAt time.Time  `json:"enteredAt"`
	LeftAt    *time.Time `json:"leftAt,omitempty"`

	flags int64
}

// Message report flags on a send step.
const (
	flagDelivered = 1 << iota
	flagOpened
	flagClicked
)

func waitFlag(kind string) int64 {
	switch kind {
	case WaitDelivered:
		return flagDelivered
	case WaitOpened:
		return flagOpened
	case WaitClicked:
		return flagClicked
	}
	return 0
}

// Stats is the builder view of one workflow version: runs by status, and
// per node how many runs entered and by which branch they left.
type Stats struct {
	WorkflowID string                `json:"workflowId"`
	Version    int64                 `json:"version"`
	Runs       map[string]int64      `json:"runs"`
	Nodes      map[string]*NodeStats `json:"nodes"`
}

// NodeStats counts one node's runs.
type NodeStats struct {
	Entered int64            `json:"entered"`
	Exits   map[string]int64 `json:"exits"`
}

// Contacts reads and changes contacts for runs; the app wires it to the
// contacts module.
type Contacts interface {
	// Contact returns the contact's current state, or ErrContactNotFound
	// (also for an erased contact).
	Contact(ctx context.Context, tenant, id string) (rule.Contact, error)
	// Apply sets attributes and adds and removes tags. Applying a change
	// the contact already reflects changes nothing, so a retried node
	// has no second effect.
	Apply(ctx context.Context, tenant, id string, c ContactChange) error
}

// ContactChange is what an update_contact node does.
type ContactChange struct {
	SetAttributes map[string]any
	AddTags       []string
	RemoveTags    []string
}

// Templates tells which templates may be sent; the app wires it to the
// templates module.
type Templates interface {
	// Template returns a template's channel and whether it is active, or
	// ErrTemplateNotFound.
	Template(ctx context.Context, tenant, id string) (channel string, active bool, err error)
}

// Segments tells whether segments exist; the app wires it to the segments
// module.
type Segments interface {
	SegmentExists(ctx context.Context, tenant, id string) (bool, error)
}

// Timers arms the durable timers of delays and timeouts (the bus's
// ALUM_TIMERS).
type Timers interface {
	ScheduleTimer(ctx context.Context, key string, at time.Time, data []byte) error
	CancelTimer(ctx context.Context, key string) error
}

// Errors the wired modules return.
var (
	ErrTemplateNotFound = errors.New("template not found")
	ErrContactNotFound  = errors.New("contact not found")
)

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func optMillis(ns sql.NullInt64) *time.Time {
	if !ns.Valid {
		return nil
	}
	t := fromMillis(ns.Int64)
	return &t
}
