package tokens

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/turnstilemq/turnstile/pkg/tokensign"
)

// APIVersion is the RPC API's Version (product OnsMqtt, tokens.md §2).
const APIVersion = "2020-04-20"

// Error codes of the RPC API. The first four are Alibaba's for these actions (tokens.md §2); the
// others follow Alibaba's common RPC error codes.
const (
	CodeParameter          = "ParameterCheckFailed"
	CodePermission         = "PermissionCheckFailed"
	CodeInstancePermission = "InstancePermissionCheckFailed"
	CodeAccessKeyNotFound  = "InvalidAccessKeyId.NotFound"
	CodeAccessKeyInactive  = "InvalidAccessKeyId.Inactive"
	CodeSignature          = "SignatureDoesNotMatch"
	CodeNonceUsed          = "SignatureNonceUsed"
	CodeTimestampFormat    = "InvalidTimeStamp.Format"
	CodeTimestampExpired   = "InvalidTimeStamp.Expired"
	CodeThrottling         = "Throttling.User"
	CodeAction             = "InvalidAction.NotFound"
	CodeRevokeFailed       = "RevokeFailed"
	CodeInternal           = "InternalError"
)

// APIError is the one error type of the API: an HTTP status and an RPC error code with a
// message that names the parameter, never a secret or a token.
type APIError struct {
	Status  int
	Code    string
	Message string
	invalid InvalidCode // for the legacy form's codes 1, 2, 3
}

func (e *APIError) Error() string { return "tokens: " + e.Code + ": " + e.Message }

func apiErr(status int, code, msg string) *APIError {
	return &APIError{Status: status, Code: code, Message: msg}
}

func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.serveRPC)
	if s.o.Legacy {
		mux.HandleFunc("/token/apply", s.serveLegacy)
		mux.HandleFunc("/token/query", s.serveLegacy)
		mux.HandleFunc("/token/revoke", s.serveLegacy)
	}
	return mux
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	const hex = "0123456789ABCDEF"
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hex[c>>4], hex[c&15]
		j += 2
	}
	return string(out[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // responses carry tokens
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// readParams returns the request's parameters: the query string, and for a POST the
// form-encoded body too, size-limited. A parameter given twice is refused: the signer and the
// verifier could otherwise read different values.
func (s *Service) readParams(w http.ResponseWriter, r *http.Request) (url.Values, *APIError) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		return nil, apiErr(http.StatusMethodNotAllowed, CodeParameter, "method: GET or POST")
	}
	if int64(len(r.URL.RawQuery)) > s.o.MaxBodyBytes {
		return nil, apiErr(http.StatusRequestURITooLong, CodeParameter, "query string too long")
	}
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, "query string: malformed")
	}
	if r.Method == http.MethodPost && r.Body != nil {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, _ := mime.ParseMediaType(ct)
			if mt != "application/x-www-form-urlencoded" {
				return nil, apiErr(http.StatusUnsupportedMediaType, CodeParameter, "Content-Type: application/x-www-form-urlencoded")
			}
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, apiErr(http.StatusRequestEntityTooLarge, CodeParameter, fmt.Sprintf("body larger than %d bytes", s.o.MaxBodyBytes))
			}
			return nil, apiErr(http.StatusBadRequest, CodeParameter, "body: unreadable")
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, apiErr(http.StatusBadRequest, CodeParameter, "body: malformed form")
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	for k, vs := range params {
		if len(vs) > 1 {
			return nil, apiErr(http.StatusBadRequest, CodeParameter, truncate(k)+": given more than once")
		}
	}
	return params, nil
}

// truncate bounds a client-given name before it goes into a message.
func truncate(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}

var classOf = map[string]class{"ApplyToken": classApply, "QueryToken": classQuery, "RevokeToken": classRevoke}

// serveRPC answers the RPC form (tokens.md §2, §3).
func (s *Service) serveRPC(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	fail := func(e *APIError) {
		writeJSON(w, e.Status, map[string]string{"RequestId": reqID, "Code": e.Code, "Message": e.Message})
	}
	if r.URL.Path != "/" {
		fail(apiErr(http.StatusNotFound, CodeAction, "path: not found"))
		return
	}
	p, e := s.readParams(w, r)
	if e != nil {
		fail(e)
		return
	}
	ak, e := s.checkRPC(r.Method, p)
	if e != nil {
		fail(e)
		return
	}
	switch p.Get("Action") {
	case "ApplyToken":
		resources, err := ParseResources(p.Get("Resources"))
		if err != nil {
			fail(apiErr(http.StatusBadRequest, CodeParameter, err.Error()))
			return
		}
		typ, err := ParseActions(p.Get("Actions"))
		if err != nil {
			fail(apiErr(http.StatusBadRequest, CodeParameter, err.Error()))
			return
		}
		ms, err := strconv.ParseInt(p.Get("ExpireTime"), 10, 64)
		if err != nil {
			fail(apiErr(http.StatusBadRequest, CodeParameter, "ExpireTime: Unix time in milliseconds"))
			return
		}
		iss, err := s.ApplyToken(ak.ID, p.Get("InstanceId"), resources, typ, time.UnixMilli(ms))
		if err != nil {
			fail(asAPIError(err))
			return
		}
		resp := struct {
			RequestID  string `json:"RequestId"`
			Token      string `json:"Token"`
			ExpireTime int64  `json:"ExpireTime"`
			Message    string `json:"Message,omitempty"`
		}{reqID, iss.Token, iss.Expiry.UnixMilli(), ""}
		if iss.Capped {
			resp.Message = fmt.Sprintf("ExpireTime capped at the maximum token lifetime (%v)", s.o.MaxLifetime)
		}
		writeJSON(w, http.StatusOK, resp)
	case "QueryToken":
		ok, _, err := s.QueryToken(ak.ID, p.Get("InstanceId"), p.Get("Token"))
		if err != nil {
			fail(asAPIError(err))
			return
		}
		writeJSON(w, http.StatusOK, struct {
			RequestID   string `json:"RequestId"`
			TokenStatus bool   `json:"TokenStatus"`
		}{reqID, ok})
	case "RevokeToken":
		if err := s.RevokeToken(ak.ID, p.Get("InstanceId"), p.Get("Token")); err != nil {
			fail(asAPIError(err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"RequestId": reqID})
	}
}

func asAPIError(err error) *APIError {
	var e *APIError
	if errors.As(err, &e) {
		return e
	}
	return apiErr(http.StatusInternalServerError, CodeInternal, "internal error")
}

// required parameters of the RPC form, by action.
var rpcRequired = map[string][]string{
	"ApplyToken":  {"InstanceId", "Resources", "Actions", "ExpireTime"},
	"QueryToken":  {"InstanceId", "Token"},
	"RevokeToken": {"InstanceId", "Token"},
}

const maxNonceLen = 128

// checkRPC verifies an RPC request: the common parameters, the AccessKey, the signature
// (constant-time), the timestamp window, the owner, the rate and the nonce, in that order.
func (s *Service) checkRPC(httpMethod string, p url.Values) (*accessKeyRecord, *APIError) {
	action := p.Get(tokensign.ParamAction)
	c, ok := classOf[action]
	if !ok {
		return nil, apiErr(http.StatusBadRequest, CodeAction, "Action: ApplyToken, QueryToken or RevokeToken")
	}
	if v := p.Get(tokensign.ParamVersion); v != APIVersion {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, "Version: must be "+APIVersion)
	}
	if f := p.Get(tokensign.ParamFormat); f != "" && !strings.EqualFold(f, "JSON") {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, "Format: only JSON")
	}
	for _, k := range []string{tokensign.ParamAccessKeyID, tokensign.ParamSignature, tokensign.ParamSignatureMethod,
		tokensign.ParamSignatureVersion, tokensign.ParamSignatureNonce, tokensign.ParamTimestamp} {
		if p.Get(k) == "" {
			return nil, apiErr(http.StatusBadRequest, CodeParameter, k+": missing")
		}
	}
	for _, k := range rpcRequired[action] {
		if p.Get(k) == "" {
			return nil, apiErr(http.StatusBadRequest, CodeParameter, k+": missing")
		}
	}
	if p.Get(tokensign.ParamSignatureVersion) != tokensign.SignatureVersion {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, "SignatureVersion: must be 1.0")
	}
	if m := p.Get(tokensign.ParamSignatureMethod); m != tokensign.HMACSHA1 && m != tokensign.HMACSHA256 {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, "SignatureMethod: HMAC-SHA1 or HMAC-SHA256")
	}
	nonce := p.Get(tokensign.ParamSignatureNonce)
	if len(nonce) > maxNonceLen {
		return nil, apiErr(http.StatusBadRequest, CodeParameter, fmt.Sprintf("SignatureNonce: at most %d bytes", maxNonceLen))
	}
	akid := p.Get(tokensign.ParamAccessKeyID)
	ak, found := s.aks.get(akid)
	secret := ak.Secret
	if !found {
		secret = "unknown AccessKey: the signature is computed anyway" // same cost as a known key
	}
	want, err := tokensign.RPCSignature(httpMethod, p, secret)
	good := err == nil && tokensign.Equal(want, p.Get(tokensign.ParamSignature))
	if !found {
		return nil, apiErr(http.StatusNotFound, CodeAccessKeyNotFound, "AccessKeyId: not found")
	}
	if !good {
		return nil, apiErr(http.StatusBadRequest, CodeSignature, "Signature: does not match")
	}
	ts, err := time.Parse(tokensign.TimestampLayout, p.Get(tokensign.ParamTimestamp))
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, CodeTimestampFormat, "Timestamp: yyyy-MM-ddTHH:mm:ssZ (UTC)")
	}
	now := s.clk.Now()
	if d := now.Sub(ts); d > s.o.TimestampWindow || d < -s.o.TimestampWindow {
		return nil, apiErr(http.StatusBadRequest, CodeTimestampExpired, fmt.Sprintf("Timestamp: more than %v from the server's time", s.o.TimestampWindow))
	}
	return s.admit(&ak, c, nonce, now)
}

// admit applies the checks shared by both forms once the signature is good: the owner, the
// rate, then the nonce (none for the legacy form).
func (s *Service) admit(ak *accessKeyRecord, c class, nonce string, now time.Time) (*accessKeyRecord, *APIError) {
	if uid, ok := s.o.Owners.UserID(ak.User); !ok || uid != ak.UserID {
		return nil, apiErr(http.StatusForbidden, CodeAccessKeyInactive, "AccessKeyId: its owner no longer exists")
	}
	if !s.guard.allow(ak.ID, c, now) {
		return nil, apiErr(http.StatusTooManyRequests, CodeThrottling, "request rate of this AccessKey exceeded")
	}
	if nonce != "" {
		switch s.guard.useNonce(ak.ID, nonce, now) {
		case nonceReplay:
			return nil, apiErr(http.StatusBadRequest, CodeNonceUsed, "SignatureNonce: already used")
		case nonceFull:
			return nil, apiErr(http.StatusTooManyRequests, CodeThrottling, "too many requests within the replay window")
		}
	}
	return ak, nil
}
