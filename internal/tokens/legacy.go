package tokens

import (
	"net/http"
	"strconv"
	"time"

	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

// Codes of the legacy form's responses (tokens.md §3).
const (
	LegacyOK             = 200
	LegacyParamError     = 400
	LegacySignatureError = 407
	LegacyApplyFailed    = 409
	LegacyRevokeFailed   = 410
	LegacyForged         = 1
	LegacyExpired        = 2
	LegacyRevoked        = 3
)

type legacyResponse struct {
	Success   bool   `json:"success"`
	Message   string `json:"message"`
	Code      int    `json:"code"`
	TokenData string `json:"tokenData,omitempty"`
}

// serveLegacy answers /token/apply, /token/query and /token/revoke (doc 54274). The answer is
// HTTP 200 with the outcome in the body, as Alibaba's samples expect, except for a wrong method,
// an oversized request and rate limiting.
func (s *Service) serveLegacy(w http.ResponseWriter, r *http.Request) {
	p, e := s.readParams(w, r)
	if e != nil {
		writeJSON(w, e.Status, legacyResponse{Message: e.Message, Code: LegacyParamError})
		return
	}
	reply := func(code int, msg string) {
		writeJSON(w, http.StatusOK, legacyResponse{Success: code == LegacyOK, Message: msg, Code: code})
	}
	var c class
	var required []string
	switch r.URL.Path {
	case "/token/apply":
		c, required = classApply, []string{"resources", "actions", "expireTime", "instanceId"}
	case "/token/query":
		c, required = classQuery, []string{"token"}
	default:
		c, required = classRevoke, []string{"token"}
	}
	for _, k := range append(required, tokensign.LegacyAccessKey, tokensign.LegacySignature) {
		if p.Get(k) == "" {
			reply(LegacyParamError, k+": missing")
			return
		}
	}
	ak, found := s.aks.get(p.Get(tokensign.LegacyAccessKey))
	secret := ak.Secret
	if !found {
		secret = "unknown AccessKey: the signature is computed anyway"
	}
	good := tokensign.Equal(tokensign.LegacyRequestSignature(p, secret), p.Get(tokensign.LegacySignature))
	if !found || !good {
		reply(LegacySignatureError, "signature: does not match")
		return
	}
	if _, e := s.admit(&ak, c, "", s.clk.Now()); e != nil {
		if e.Status == http.StatusTooManyRequests {
			writeJSON(w, e.Status, legacyResponse{Message: e.Message, Code: LegacyParamError})
			return
		}
		reply(LegacySignatureError, e.Message)
		return
	}
	switch c {
	case classApply:
		resources, err := ParseResources(p.Get("resources"))
		if err != nil {
			reply(LegacyParamError, "resources: "+err.(*ParamError).Msg)
			return
		}
		typ, err := ParseActions(p.Get("actions"))
		if err != nil {
			reply(LegacyParamError, "actions: "+err.(*ParamError).Msg)
			return
		}
		ms, err := strconv.ParseInt(p.Get("expireTime"), 10, 64)
		if err != nil {
			reply(LegacyParamError, "expireTime: Unix time in milliseconds")
			return
		}
		if sn := p.Get("serviceName"); sn != "" && sn != "mq" {
			reply(LegacyParamError, `serviceName: must be "mq"`)
			return
		}
		iss, err := s.ApplyToken(ak.ID, p.Get("instanceId"), resources, typ, time.UnixMilli(ms))
		if err != nil {
			e := asAPIError(err)
			code := LegacyApplyFailed
			if e.Code == CodeParameter {
				code = LegacyParamError
			}
			reply(code, e.Message)
			return
		}
		msg := "success"
		if iss.Capped {
			msg = "success; expireTime capped at the maximum token lifetime (" + s.o.MaxLifetime.String() + ")"
		}
		writeJSON(w, http.StatusOK, legacyResponse{Success: true, Message: msg, Code: LegacyOK, TokenData: iss.Token})
	case classQuery:
		ok, code, err := s.QueryToken(ak.ID, ak.Vhost, p.Get("token"))
		switch {
		case err != nil:
			reply(LegacyParamError, asAPIError(err).Message)
		case ok:
			reply(LegacyOK, "token valid")
		default:
			reply(legacyCode(code), "token invalid")
		}
	case classRevoke:
		if err := s.RevokeToken(ak.ID, ak.Vhost, p.Get("token")); err != nil {
			e := asAPIError(err)
			code := LegacyRevokeFailed
			if e.invalid != 0 {
				code = legacyCode(e.invalid)
			}
			reply(code, e.Message)
			return
		}
		reply(LegacyOK, "success")
	}
}

// legacyCode maps a notice code to the legacy form's 1 (forged), 2 (expired), 3 (revoked).
func legacyCode(c InvalidCode) int {
	switch c {
	case InvalidExpired:
		return LegacyExpired
	case InvalidRevoked:
		return LegacyRevoked
	}
	return LegacyForged
}
