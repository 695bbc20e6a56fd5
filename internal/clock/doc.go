// Package clock is the time source of everything in Turnstile that expires or waits: session
// expiry, will delay, credential expiry, rate limits, token windows. Production code takes a
// Clock and uses Real; tests take a Fake and move it by hand, so that expiry is proven without
// sleeping (STYLE practice 10).
//
// It owns nothing else and imports only the standard library.
package clock
