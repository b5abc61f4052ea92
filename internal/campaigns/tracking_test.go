package campaigns

import (
	"slices"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// The consumer's filter and the statuses it counts must not drift apart:
// a status missing from the filter would never be counted.
func TestTrackingSubjectsAreTheCountedStatuses(t *testing.T) {
	if len(TrackingSubjects) != len(subjectFlags) {
		t.Fatalf("%d filter subjects, %d counted statuses", len(TrackingSubjects), len(subjectFlags))
	}
	for subject := range subjectFlags {
		if !slices.Contains(TrackingSubjects, subject) {
			t.Errorf("%s is counted but not in TrackingSubjects", subject)
		}
	}
	if slices.Contains(TrackingSubjects, event.PipelineMessageQueued) {
		t.Error("queued is counted by the runner, not delivered to the consumer")
	}
}
