package tokensign

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"net/url"
	"slices"
	"strings"
)

// Signature methods of the RPC form (the SignatureMethod parameter).
const (
	HMACSHA1   = "HMAC-SHA1"
	HMACSHA256 = "HMAC-SHA256"
)

// Names of the RPC form's common parameters.
const (
	ParamSignature        = "Signature"
	ParamSignatureMethod  = "SignatureMethod"
	ParamSignatureVersion = "SignatureVersion"
	ParamSignatureNonce   = "SignatureNonce"
	ParamTimestamp        = "Timestamp"
	ParamAccessKeyID      = "AccessKeyId"
	ParamAction           = "Action"
	ParamVersion          = "Version"
	ParamFormat           = "Format"
)

// SignatureVersion is the only RPC signature version.
const SignatureVersion = "1.0"

// TimestampLayout is the RPC form's Timestamp format (UTC, ISO 8601 without fractions).
const TimestampLayout = "2006-01-02T15:04:05Z"

// Parameters of the legacy form that are not signed: the samples add them after signing.
const (
	LegacySignature = "signature"
	LegacyAccessKey = "accessKey"
	LegacyProxyType = "proxyType"
)

// ErrMethod is returned for a SignatureMethod other than HMAC-SHA1 and HMAC-SHA256.
var ErrMethod = errors.New("tokensign: SignatureMethod must be HMAC-SHA1 or HMAC-SHA256")

// PercentEncode encodes s per RFC 3986 as the RPC signature needs: the unreserved characters
// A-Z a-z 0-9 - _ . ~ are kept, every other byte becomes %XY in upper-case hex (a space is %20).
func PercentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// CanonicalQuery returns the RPC form's canonical query of params: every parameter but
// Signature, sorted by name, name and value percent-encoded, joined "k=v" with '&'. A name with
// several values contributes one pair per value, values sorted.
func CanonicalQuery(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != ParamSignature {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		vs := slices.Clone(params[k])
		slices.Sort(vs)
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(PercentEncode(k))
			b.WriteByte('=')
			b.WriteString(PercentEncode(v))
		}
	}
	return b.String()
}

// StringToSign returns the RPC form's string to sign: HTTP method, "&", the encoded "/", "&",
// and the encoded canonical query.
func StringToSign(httpMethod string, params url.Values) string {
	return strings.ToUpper(httpMethod) + "&" + PercentEncode("/") + "&" + PercentEncode(CanonicalQuery(params))
}

func newHash(method string) (func() hash.Hash, error) {
	switch method {
	case HMACSHA1:
		return sha1.New, nil
	case HMACSHA256:
		return sha256.New, nil
	}
	return nil, ErrMethod
}

// RPCSignature returns the RPC form's Signature of a request with params (Signature itself is
// ignored) sent with httpMethod, using the SignatureMethod named in params: Base64 of the HMAC
// keyed with secret + "&".
func RPCSignature(httpMethod string, params url.Values, secret string) (string, error) {
	h, err := newHash(params.Get(ParamSignatureMethod))
	if err != nil {
		return "", err
	}
	m := hmac.New(h, []byte(secret+"&"))
	m.Write([]byte(StringToSign(httpMethod, params)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// LegacyStringToSign returns the legacy form's string to sign: the parameters but signature,
// accessKey and proxyType, as "key=value" pairs sorted by key, each key's values (repeated
// parameters, and each value split at ',') sorted and joined with ',', pairs joined with '&'.
func LegacyStringToSign(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		switch k {
		case LegacySignature, LegacyAccessKey, LegacyProxyType:
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		var vs []string
		for _, v := range params[k] {
			vs = append(vs, strings.Split(v, ",")...)
		}
		slices.Sort(vs)
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strings.Join(vs, ","))
	}
	return b.String()
}

// LegacyRequestSignature returns the legacy form's signature of params: Base64 of
// HMAC-SHA1(secret, LegacyStringToSign(params)).
func LegacyRequestSignature(params url.Values, secret string) string {
	return mac(secret, LegacyStringToSign(params))
}

// MQTTPassword returns the password of an MQTT Signature-mode login
// ("Signature|<AccessKeyId>|<InstanceId>"): Base64(HMAC-SHA1(secret, clientID)).
func MQTTPassword(secret, clientID string) string { return mac(secret, clientID) }

func mac(key, data string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Equal compares two signatures in constant time (for equal lengths).
func Equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
