// Package campaigns runs bulk sends: one template to the members of one
// or more segments (less exclusion segments), now, at a set time, or at a
// local time in each recipient's own time zone.
//
// Owns: campaigns (definition, lifecycle, fan-out cursor, lease),
// campaign_recipients (the audience frozen at start), campaign_messages
// (one row per message queued, with the statuses seen), campaign_stats
// (live counters) and campaign_timeline (per-minute counts).
//
// Lifecycle: created -> scheduled -> started <-> paused -> completed, and
// cancelled from any status before completed. A scheduled start is a
// durable timer on ALUM_TIMERS (it fires after a restart, and once with
// several instances); the runner's sweep starts a campaign whose timer
// did not fire within 10 s. Completed when every recipient was queued and
// every message reached a final state (sent, failed or skipped).
//
// Sending: the Runner holds a lease on each started campaign (one process
// runs it; another takes over after a crash), freezes its audience, then
// queues recipients in batches: their pipeline.message.queued events,
// their campaign_messages rows and the moved cursor commit together, so a
// crash resumes exactly where it stopped, and the pipeline's send key
// makes a second message to anyone impossible. At most a second of sending
// (MaxInFlight at most) waits in the pipeline, so a pause takes effect
// within about a second.
//
// Publishes (source "campaigns-service"): campaign.created,
// campaign.scheduled, campaign.started (with the audience size),
// campaign.paused, campaign.resumed, campaign.cancelled,
// campaign.completed; pipeline.message.queued for each recipient; and
// campaign.message.sent, delivered, opened, clicked and bounced.
//
// Consumers: CAMPAIGNS_TRACKING_CONSUMER (pipeline.message.>) keeps the
// counters, exact under redelivery; CAMPAIGNS_TIMER_CONSUMER
// (timer.fired.campaign.start.>) starts scheduled campaigns.
//
// HTTP: /api/v1/campaigns (see HTTP.RegisterRoutes and docs/api.md).
package campaigns
