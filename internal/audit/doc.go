// Package audit writes the audit log: one JSON object per line for every security event
// (logins and their failures, authorization denials, disconnects with their reason, wills
// published or suppressed), read from the event seam (package event).
//
// A line names who (user, subject, issuer, client id, address), what, and why, with the
// credential's id and key id where there is one; it never carries a password, a token or a
// payload. Writing is asynchronous through a bounded queue, so a slow disk never stalls a
// connection: when the queue is full, events are dropped and counted, and the next line that
// gets through says how many were lost.
package audit
