// Package keyfile reads and creates the 32-byte secret keys Turnstile keeps in files outside its
// data directory: the token service's master key ([tokens] key_file) and the password verifier
// key ([main] auth_key_file). A key protects what the store holds, so it never goes into the
// store, and a file that group or others may read is refused.
//
// It knows nothing of what a key is for; each owner names its file in its own errors.
package keyfile
