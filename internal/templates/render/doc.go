// Package render is the template language of AlumOutreach messages: text
// with placeholders, checked when a template is saved and filled when a
// message is sent.
//
//	Hello {{contact.firstName | default: "friend"}},
//	class of {{contact.attributes.classYear}} -- {{campaign.name | upper}}
//	<a href="{{unsubscribeUrl}}">Unsubscribe</a>
//
// A placeholder is {{ variable }} with optional filters after '|':
// default: "text" (used when the value is missing or empty), upper, lower,
// capitalize. Variables:
//
//	contact.email  contact.phone  contact.firstName  contact.lastName
//	contact.fullName  contact.locale  contact.timeZone
//	contact.tags                  the tags, joined with ", "
//	contact.attributes.NAME       a custom attribute (numbers without
//	                              exponent, booleans as true/false)
//	campaign.id  campaign.name    the sending campaign, when there is one
//	message.id                    our id of the message being sent
//	unsubscribeUrl                the recipient's one-click unsubscribe link
//
// Anything else is refused when the template is parsed, with the line and
// column of the mistake, as is a placeholder left open. Write \{{ for a
// literal "{{".
//
// HTML parts are rendered through html/template: every value is escaped
// for the context it lands in (text, attribute, URL), so a contact whose
// name is "<script>" shows as text and a "javascript:" attribute never
// becomes a link. Text parts (subjects, plain text, SMS) are filled as is.
// There are no conditionals or loops: templates stay safe to write for
// people who are not programmers, and every message of a campaign has the
// same shape.
package render
