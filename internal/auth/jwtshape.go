package auth

// LooksLikeJWT reports whether pw has the shape of a JWT in compact serialization, as LavinMQ
// tells a token from a password: it starts with "ey" (the base64url of `{"`) and has three
// dot-separated parts of base64url characters, the first two non-empty (the signature may be
// empty, as in an unsigned token, which the oauth provider then refuses rather than ignores).
//
// Local abstains on such a password and the oauth provider answers only for such a password,
// so that [main] auth_backends = local,oauth tries the token. It looks at the shape only.
func LooksLikeJWT(pw []byte) bool {
	if len(pw) < 5 || pw[0] != 'e' || pw[1] != 'y' {
		return false
	}
	dots, last := 0, -1
	for i, b := range pw {
		switch {
		case b == '.':
			if i == last+1 && dots < 2 {
				return false // an empty header or payload
			}
			dots++
			last = i
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return dots == 2
}
