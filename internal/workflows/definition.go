package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// Trigger events a workflow can start on.
const (
	TriggerContactCreated = event.ContactCreated
	TriggerContactUpdated = event.ContactUpdated
	TriggerContactTagged  = event.ContactTagged
	TriggerSegmentAdded   = event.SegmentMemberAdded
	TriggerSegmentRemoved = event.SegmentMemberRemoved
	// TriggerCustom starts on a named custom event posted to the API.
	TriggerCustom = "custom"
)

var triggerEvents = []string{TriggerContactCreated, TriggerContactUpdated, TriggerContactTagged,
	TriggerSegmentAdded, TriggerSegmentRemoved, TriggerCustom}

// Re-entry policies: may a contact go through a workflow again?
const (
	// ReentryNever runs a workflow once per contact, ever.
	ReentryNever = "never"
	// ReentryAfterExit starts a new run once the contact's previous one has ended.
	ReentryAfterExit = "after_exit"
	// ReentryAlways starts a run on every trigger, even beside a running one.
	ReentryAlways = "always"
)

var reentries = []string{ReentryNever, ReentryAfterExit, ReentryAlways}

// Node types.
const (
	NodeSend          = "send"
	NodeDelay         = "delay"
	NodeWaitUntil     = "wait_until"
	NodeCondition     = "condition"
	NodeSplit         = "split"
	NodeUpdateContact = "update_contact"
	NodeExit          = "exit"
)

var nodeTypes = []string{NodeSend, NodeDelay, NodeWaitUntil, NodeCondition, NodeSplit, NodeUpdateContact, NodeExit}

// Message events a wait_until node can wait for.
const (
	WaitDelivered = "delivered"
	WaitOpened    = "opened"
	WaitClicked   = "clicked"
)

// Branches out of nodes, as runs record them and node stats count them.
const (
	BranchNext    = "next"
	BranchYes     = "yes"
	BranchNo      = "no"
	BranchMet     = "met"
	BranchTimeout = "timeout"
)

const (
	maxNodes    = 200
	maxGoals    = 20
	maxBranches = 10
	maxDelay    = 366 * 24 * time.Hour
)

// Definition is one version of a workflow: what starts it, its nodes (the
// first is where runs begin) and its goals.
type Definition struct {
	Trigger Trigger `json:"trigger"`
	// Reentry is ReentryNever (the default), ReentryAfterExit or ReentryAlways.
	Reentry string `json:"reentry"`
	Nodes   []Node `json:"nodes"`
	Goals   []Goal `json:"goals,omitempty"`

	byID       map[string]int
	goalRules  []*rule.Rule
	triggerKey string
}

// Trigger says which event starts a run.
type Trigger struct {
	// Event is one of contact.created, contact.updated, contact.tagged,
	// segment.member.added, segment.member.removed or custom.
	Event string `json:"event"`
	// Rule, on contact.updated, must match the contact's new values.
	Rule json.RawMessage `json:"rule,omitempty"`
	// Tag is the tag contact.tagged must add.
	Tag string `json:"tag,omitempty"`
	// SegmentID is the segment of segment.member.added/removed.
	SegmentID string `json:"segmentId,omitempty"`
	// Name is the custom event's name.
	Name string `json:"name,omitempty"`

	rule *rule.Rule
}

// Node is one step of a workflow. Which fields apply depends on Type; Next
// (or the branches) name the node that follows, and an empty one ends the
// run as completed.
type Node struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Next string `json:"next,omitempty"`

	// send
	Channel    string `json:"channel,omitempty"`
	TemplateID string `json:"templateId,omitempty"`

	// delay: Duration ("48h", "3d"), or Until a time of day ("09:00") in
	// the contact's zone (UTC when it has none).
	Duration string `json:"duration,omitempty"`
	Until    string `json:"until,omitempty"`

	// wait_until: Event (delivered, opened, clicked) of the message that
	// the send node NodeID sent, or Rule becoming true; Timeout bounds the
	// wait and TimeoutNext follows it.
	Event       string `json:"event,omitempty"`
	NodeID      string `json:"nodeId,omitempty"`
	Timeout     string `json:"timeout,omitempty"`
	TimeoutNext string `json:"timeoutNext,omitempty"`

	// condition and wait_until
	Rule json.RawMessage `json:"rule,omitempty"`
	// condition
	Yes string `json:"yes,omitempty"`
	No  string `json:"no,omitempty"`

	// split
	Branches []SplitBranch `json:"branches,omitempty"`

	// update_contact
	SetAttributes map[string]any `json:"setAttributes,omitempty"`
	AddTags       []string       `json:"addTags,omitempty"`
	RemoveTags    []string       `json:"removeTags,omitempty"`

	rule     *rule.Rule
	duration time.Duration
	untilMin int // minutes after midnight
	timeout  time.Duration
}

// SplitBranch is one way out of a random split.
type SplitBranch struct {
	Name    string `json:"name"`
	Percent int    `json:"percent"`
	Next    string `json:"next,omitempty"`
}

// Goal ends a run the first time its rule matches the contact.
type Goal struct {
	ID   string          `json:"id"`
	Name string          `json:"name,omitempty"`
	Rule json.RawMessage `json:"rule"`
}

// catalog answers what validation must look up in other modules; nil
// skips the look-ups (a stored definition, checked when it was saved).
type catalog interface {
	Template(ctx context.Context, tenant, id string) (channel string, active bool, err error)
	SegmentExists(ctx context.Context, tenant, id string) (bool, error)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func invalidAt(path, format string, args ...any) error {
	e := fault.New(fault.Invalid, "invalid_workflow", "%s: %s", path, fmt.Sprintf(format, args...))
	e.Details = map[string]any{"path": path}
	return e
}

func nodePath(i int, n *Node) string {
	if n.ID == "" {
		return fmt.Sprintf("nodes[%d]", i)
	}
	return fmt.Sprintf("nodes[%d] (%q)", i, n.ID)
}

// parseRule parses a rule found at path, reporting errors under it.
func parseRule(raw json.RawMessage, path string) (*rule.Rule, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, invalidAt(path, `a rule is required, e.g. {"field": "tags", "op": "contains", "value": "donor"}`)
	}
	r, err := rule.Parse(raw)
	if err != nil {
		var re *rule.Error
		if errors.As(err, &re) && re.Path != "" {
			return nil, invalidAt(path+"."+re.Path, "%s", re.Message)
		}
		return nil, invalidAt(path, "%v", err)
	}
	return r, nil
}

// ParseDuration reads "90m", "36h", "7d" or "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	days := time.Duration(0)
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration such as 90m, 36h or 7d", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 90m, 36h or 7d", s)
		}
		rest = d
	}
	return days + rest, nil
}

func parseClock(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// validate checks d completely, looking templates and segments up in cat,
// and prepares it to run (parsed rules and durations, the node index).
// Every error is a 400 whose path names the node, goal or field at fault.
func (d *Definition) validate(ctx context.Context, tenant string, cat catalog) error {
	if err := d.validateTrigger(ctx, tenant, cat); err != nil {
		return err
	}
	if d.Reentry == "" {
		d.Reentry = ReentryNever
	}
	if !slices.Contains(reentries, d.Reentry) {
		return invalidAt("reentry", "must be one of %s (got %q)", strings.Join(reentries, ", "), d.Reentry)
	}
	if len(d.Nodes) == 0 || len(d.Nodes) > maxNodes {
		return invalidAt("nodes", "a workflow has 1 to %d nodes (got %d)", maxNodes, len(d.Nodes))
	}
	d.byID = make(map[string]int, len(d.Nodes))
	for i := range d.Nodes {
		n := &d.Nodes[i]
		if !idPattern.MatchString(n.ID) {
			return invalidAt(nodePath(i, n)+".id", "node ids are 1 to 64 letters, digits, '-' or '_'")
		}
		if _, dup := d.byID[n.ID]; dup {
			return invalidAt(nodePath(i, n)+".id", "another node has id %q", n.ID)
		}
		d.byID[n.ID] = i
	}
	for i := range d.Nodes {
		if err := d.validateNode(ctx, tenant, cat, i); err != nil {
			return err
		}
	}
	if err := d.checkGraph(); err != nil {
		return err
	}
	return d.validateGoals()
}

func (d *Definition) validateTrigger(ctx context.Context, tenant string, cat catalog) error {
	t := &d.Trigger
	if !slices.Contains(triggerEvents, t.Event) {
		return invalidAt("trigger.event", "must be one of %s (got %q)", strings.Join(triggerEvents, ", "), t.Event)
	}
	// Only the field of the trigger's own kind may be set, so a trigger
	// never silently ignores half of what it was given.
	extra := func(name string, set bool) error {
		if set {
			return invalidAt("trigger."+name, "does not apply to a %s trigger", t.Event)
		}
		return nil
	}
	switch t.Event {
	case TriggerContactUpdated:
		if len(t.Rule) > 0 {
			r, err := parseRule(t.Rule, "trigger.rule")
			if err != nil {
				return err
			}
			t.rule = r
		}
	case TriggerContactTagged:
		if strings.TrimSpace(t.Tag) == "" {
			return invalidAt("trigger.tag", "name the tag that starts the workflow")
		}
		t.Tag = strings.ToLower(strings.TrimSpace(t.Tag))
		d.triggerKey = t.Tag
	case TriggerSegmentAdded, TriggerSegmentRemoved:
		if t.SegmentID == "" {
			return invalidAt("trigger.segmentId", "name the segment whose members start the workflow")
		}
		if cat != nil {
			ok, err := cat.SegmentExists(ctx, tenant, t.SegmentID)
			if err != nil {
				return err
			}
			if !ok {
				return invalidAt("trigger.segmentId", "no segment %q in this tenant", t.SegmentID)
			}
		}
		d.triggerKey = t.SegmentID
	case TriggerCustom:
		if !idPattern.MatchString(t.Name) {
			return invalidAt("trigger.name", "custom event names are 1 to 64 letters, digits, '-' or '_' (got %q)", t.Name)
		}
		d.triggerKey = t.Name
	}
	return firstError(
		extra("rule", t.Event != TriggerContactUpdated && len(t.Rule) > 0),
		extra("tag", t.Event != TriggerContactTagged && t.Tag != ""),
		extra("segmentId", t.Event != TriggerSegmentAdded && t.Event != TriggerSegmentRemoved && t.SegmentID != ""),
		extra("name", t.Event != TriggerCustom && t.Name != ""),
	)
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// validateNode checks node i's own fields and that the nodes it names exist.
func (d *Definition) validateNode(ctx context.Context, tenant string, cat catalog, i int) error {
	n := &d.Nodes[i]
	path := nodePath(i, n)
	ref := func(field, id string) error {
		if id == "" {
			return nil
		}
		if _, ok := d.byID[id]; !ok {
			return invalidAt(path+"."+field, "no node has id %q", id)
		}
		return nil
	}
	switch n.Type {
	case NodeSend:
		if n.Channel != event.ChannelEmail && n.Channel != event.ChannelSMS && n.Channel != event.ChannelWhatsApp {
			return invalidAt(path+".channel", "must be email, sms or whatsapp (got %q)", n.Channel)
		}
		if n.TemplateID == "" {
			return invalidAt(path+".templateId", "a send node needs a template")
		}
		if cat == nil {
			break
		}
		ch, _, err := cat.Template(ctx, tenant, n.TemplateID)
		if errors.Is(err, ErrTemplateNotFound) {
			return invalidAt(path+".templateId", "no template %q in this tenant", n.TemplateID)
		}
		if err != nil {
			return err
		}
		if ch != n.Channel {
			return invalidAt(path+".templateId", "template %q is a %s template, not %s", n.TemplateID, ch, n.Channel)
		}
	case NodeDelay:
		switch {
		case (n.Duration == "") == (n.Until == ""):
			return invalidAt(path, `a delay has a duration ("48h", "3d") or a time of day to wait until ("09:00"), not both`)
		case n.Duration != "":
			dur, err := ParseDuration(n.Duration)
			if err != nil {
				return invalidAt(path+".duration", "%v", err)
			}
			if dur <= 0 || dur > maxDelay {
				return invalidAt(path+".duration", "must be more than 0 and at most 366d")
			}
			n.duration = dur
		default:
			m, ok := parseClock(n.Until)
			if !ok {
				return invalidAt(path+".until", "must be a time of day such as 09:00 (got %q)", n.Until)
			}
			n.untilMin = m
		}
	case NodeWaitUntil:
		if (n.Event == "") == (len(n.Rule) == 0) {
			return invalidAt(path, "a wait_until waits for an event of an earlier message (event, nodeId) or for a rule, not both")
		}
		if n.Event != "" {
			if n.Event != WaitDelivered && n.Event != WaitOpened && n.Event != WaitClicked {
				return invalidAt(path+".event", "must be delivered, opened or clicked (got %q)", n.Event)
			}
			j, ok := d.byID[n.NodeID]
			if !ok || d.Nodes[j].Type != NodeSend {
				return invalidAt(path+".nodeId", "must name the send node whose message is awaited (got %q)", n.NodeID)
			}
			if n.Event != WaitDelivered && d.Nodes[j].Channel != event.ChannelEmail {
				return invalidAt(path+".event", "only email reports %s; node %q sends %s", n.Event, n.NodeID, d.Nodes[j].Channel)
			}
		} else {
			r, err := parseRule(n.Rule, path+".rule")
			if err != nil {
				return err
			}
			n.rule = r
		}
		dur, err := ParseDuration(n.Timeout)
		if n.Timeout == "" || err != nil || dur <= 0 || dur > maxDelay {
			return invalidAt(path+".timeout", `a wait_until needs a timeout between 1s and 366d, such as "72h" (got %q)`, n.Timeout)
		}
		n.timeout = dur
		if err := ref("timeoutNext", n.TimeoutNext); err != nil {
			return err
		}
	case NodeCondition:
		r, err := parseRule(n.Rule, path+".rule")
		if err != nil {
			return err
		}
		n.rule = r
		if n.Next != "" {
			return invalidAt(path+".next", "a condition goes on by yes and no")
		}
		if err := firstError(ref("yes", n.Yes), ref("no", n.No)); err != nil {
			return err
		}
	case NodeSplit:
		if len(n.Branches) < 2 || len(n.Branches) > maxBranches {
			return invalidAt(path+".branches", "a split has 2 to %d branches", maxBranches)
		}
		if n.Next != "" {
			return invalidAt(path+".next", "a split goes on by its branches")
		}
		total := 0
		seen := map[string]bool{}
		for k, b := range n.Branches {
			bp := fmt.Sprintf("%s.branches[%d]", path, k)
			if !idPattern.MatchString(b.Name) || seen[b.Name] {
				return invalidAt(bp+".name", "branch names are unique within the split: 1 to 64 letters, digits, '-' or '_'")
			}
			seen[b.Name] = true
			if b.Percent <= 0 || b.Percent > 100 {
				return invalidAt(bp+".percent", "must be 1 to 100 (got %d)", b.Percent)
			}
			total += b.Percent
			if err := ref(fmt.Sprintf("branches[%d].next", k), b.Next); err != nil {
				return err
			}
		}
		if total != 100 {
			return invalidAt(path+".branches", "percentages add up to %d, not 100", total)
		}
	case NodeUpdateContact:
		if len(n.SetAttributes) == 0 && len(n.AddTags) == 0 && len(n.RemoveTags) == 0 {
			return invalidAt(path, "an update_contact sets attributes, adds tags or removes tags")
		}
		for k, v := range n.SetAttributes {
			switch v.(type) {
			case string, float64, bool, nil:
			default:
				return invalidAt(path+".setAttributes."+k, "attribute values are strings, numbers, booleans or null")
			}
		}
		for _, tags := range [][]string{n.AddTags, n.RemoveTags} {
			for _, t := range tags {
				if strings.TrimSpace(t) == "" {
					return invalidAt(path, "tags cannot be empty")
				}
			}
		}
	case NodeExit:
		if n.Next != "" {
			return invalidAt(path+".next", "an exit ends the run; it has no next node")
		}
	default:
		return invalidAt(path+".type", "must be one of %s (got %q)", strings.Join(nodeTypes, ", "), n.Type)
	}
	return ref("next", n.Next)
}

// successors lists the nodes a node can go on to.
func (d *Definition) successors(n *Node) []string {
	var out []string
	add := func(ids ...string) {
		for _, id := range ids {
			if id != "" {
				out = append(out, id)
			}
		}
	}
	add(n.Next, n.TimeoutNext, n.Yes, n.No)
	for _, b := range n.Branches {
		add(b.Next)
	}
	return out
}

// checkGraph refuses nodes no run can reach and cycles a run could go
// round without waiting (a cycle must pass a delay node).
func (d *Definition) checkGraph() error {
	reached := make([]bool, len(d.Nodes))
	stack := []int{0}
	reached[0] = true
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, id := range d.successors(&d.Nodes[i]) {
			if j := d.byID[id]; !reached[j] {
				reached[j] = true
				stack = append(stack, j)
			}
		}
	}
	for i, ok := range reached {
		if !ok {
			return invalidAt(nodePath(i, &d.Nodes[i]), "no run can reach this node from the first node (%q)", d.Nodes[0].ID)
		}
	}
	// Depth-first search over the graph without delay nodes: a back edge
	// is a cycle with no delay on it.
	const (
		unseen = iota
		open
		done
	)
	state := make([]int, len(d.Nodes))
	var visit func(i int) error
	visit = func(i int) error {
		state[i] = open
		for _, id := range d.successors(&d.Nodes[i]) {
			j := d.byID[id]
			if d.Nodes[j].Type == NodeDelay {
				continue
			}
			switch state[j] {
			case open:
				return invalidAt(nodePath(j, &d.Nodes[j]), "this node is on a cycle without a delay node, which a run would go round without end")
			case unseen:
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		state[i] = done
		return nil
	}
	for i := range d.Nodes {
		if state[i] == unseen && d.Nodes[i].Type != NodeDelay {
			if err := visit(i); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Definition) validateGoals() error {
	if len(d.Goals) > maxGoals {
		return invalidAt("goals", "a workflow has at most %d goals", maxGoals)
	}
	d.goalRules = make([]*rule.Rule, len(d.Goals))
	seen := map[string]bool{}
	for i, g := range d.Goals {
		path := fmt.Sprintf("goals[%d]", i)
		if !idPattern.MatchString(g.ID) || seen[g.ID] {
			return invalidAt(path+".id", "goal ids are unique: 1 to 64 letters, digits, '-' or '_'")
		}
		seen[g.ID] = true
		r, err := parseRule(g.Rule, path+".rule")
		if err != nil {
			return err
		}
		d.goalRules[i] = r
	}
	return nil
}

// node returns the node with id, or nil.
func (d *Definition) node(id string) *Node {
	i, ok := d.byID[id]
	if !ok {
		return nil
	}
	return &d.Nodes[i]
}

// delayUntil returns when a delay node entered at now ends for a contact
// in zone loc.
func (n *Node) delayUntil(now time.Time, loc *time.Location) time.Time {
	if n.duration > 0 {
		return now.Add(n.duration)
	}
	local := now.In(loc)
	y, m, day := local.Date()
	at := time.Date(y, m, day, n.untilMin/60, n.untilMin%60, 0, 0, loc)
	if !at.After(now) {
		at = time.Date(y, m, day+1, n.untilMin/60, n.untilMin%60, 0, 0, loc)
	}
	return at
}
