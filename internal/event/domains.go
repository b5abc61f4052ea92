package event

// Domains are the first tokens of every subject, in the specification's
// order. The bus builds the ALUM_EVENTS stream from them ("contact.>",
// "segment.>", ...): a stream cannot take ">" itself, so the list is explicit
// and a subject outside these domains cannot be published.
var Domains = []string{
	"contact",
	"segment",
	"template",
	"campaign",
	"pipeline",
	"workflow",
	"sequence",
	"inbox",
	"webhook",
}
