// Package links makes and serves the signed links that emails carry, such as
// "confirm your subscription" and "unsubscribe".
//
// A link is a URL ending in a token (see [URL]) that a [Signer] signs with
// HMAC-SHA256. The token carries [Claims]: the customer, the event a
// confirmed click emits and where the link came from, and an expiry. Each
// token names the key that signed it, so keys can rotate: a Signer signs with
// its first key and verifies with all of them.
//
// [Handler] serves the links. Following a link never changes anything by
// itself, because mail scanners prefetch links: GET shows a small page whose
// button POSTs back to the same URL, and only the POST publishes the event,
// with the evidence of consent (time, IP address, user agent, which link) in
// its params. Mail clients that implement RFC 8058 one-click unsubscribe POST
// "List-Unsubscribe=One-Click" to the same URL and get a short plain answer.
//
// Every event the Handler publishes carries a proof in its params
// ([ProofParam], made by [Signer.Proof]): an HMAC with the current link key
// over the whole event, so the consumer accepts link-only actions such as
// newsletter.confirm only from the link pages ([Signer.VerifyProof]), never
// from whoever can publish to NATS. A Handler's Check hook can void a
// genuine link that no longer counts; [ConfirmationCheck] voids a
// confirmation link once its request was withdrawn or replaced, and the
// page says so (410 Gone).
package links
