package event

// Standard actions: the events herald.js tracks by itself, the form
// submissions the HTTP collector makes of sendFormData, and the events of
// the signed link pages. docs/tracking.md lists their labels and params.
const (
	ActionPageVisit    = "page.visit"
	ActionSessionStart = "session.start"
	ActionSessionEnd   = "session.end"
	// ActionFormSubmit is a form submission. Before any rule sees it,
	// Herald applies it to the profile (the built-in form step): the
	// params named like standard profile fields set them, each type in
	// ParamFormType becomes a tag, and the params ParamFormAttributes
	// names become custom attributes.
	ActionFormSubmit = "form.submit"
)

// Params of a form submission besides its fields.
const (
	// ParamFormType holds the form's types, separated by commas without
	// spaces, as sendFormData's formType.
	ParamFormType = "form_type"
	// ParamFormAttributes names the params that are custom attributes,
	// separated by commas; absent when there are none.
	ParamFormAttributes = "form_attributes"
	// ParamNewsletterAgreement holds the form's newsletter agreement:
	// enabled, confirmation or disabled.
	ParamNewsletterAgreement = "newsletter_agreement_enabled"
)
