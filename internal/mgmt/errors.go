package mgmt

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/turnstilemq/turnstile/internal/directory"
)

// Error is the API's one error type. Handlers return it (or any error, which becomes a 500);
// writeError turns it into RabbitMQ's JSON shape, {"error": "...", "reason": "..."}, in one
// place.
type Error struct {
	Status int      // HTTP status
	Code   string   // the "error" member: a short, stable name such as "bad_request"
	Reason string   // the "reason" member: what went wrong, naming the field or object
	Errors []string // every problem, when there are several (a definitions import)
	Header http.Header
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Reason) }

// errorBody is the JSON an Error is written as.
type errorBody struct {
	Error  string   `json:"error"`
	Reason string   `json:"reason"`
	Errors []string `json:"errors,omitempty"`
}

func apiError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return apiError(http.StatusBadRequest, "bad_request", format, args...)
}

func notFound(format string, args ...any) *Error {
	return apiError(http.StatusNotFound, "not_found", format, args...)
}

func forbidden(format string, args ...any) *Error {
	return apiError(http.StatusForbidden, "access_refused", format, args...)
}

// unauthorized asks for credentials (RabbitMQ's "not_authorized").
func unauthorized(reason string) *Error {
	e := apiError(http.StatusUnauthorized, "not_authorized", "%s", reason)
	e.Header = http.Header{"Www-Authenticate": {`Basic realm="Turnstile Management"`}}
	return e
}

func tooLarge(limit int64) *Error {
	return apiError(http.StatusRequestEntityTooLarge, "request_entity_too_large", "request body larger than %d bytes", limit)
}

// manyErrors is a 400 listing every problem of err (an errors.Join of several, or one).
func manyErrors(what string, err error) *Error {
	var list []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			list = append(list, e.Error())
		}
	} else {
		list = []string{err.Error()}
	}
	e := badRequest("%s: %s", what, strings.Join(list, "; "))
	e.Errors = list
	return e
}

// writeError writes err as JSON: an *Error as it says, anything else as a 500 whose cause is
// logged, not sent.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		log.Error("management request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
		e = apiError(http.StatusInternalServerError, "internal_error", "internal error")
	}
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	writeJSON(w, e.Status, errorBody{Error: e.Code, Reason: e.Reason, Errors: e.Errors})
}

// changeErr maps the error of a directory change: 503 when the store could not keep it, 400
// naming the field or object otherwise.
func changeErr(err error) *Error {
	switch {
	case errors.Is(err, directory.ErrNotStored):
		return apiError(http.StatusServiceUnavailable, "service_unavailable",
			"the change is in force but could not be stored: the data directory cannot be written")
	case errors.Is(err, directory.ErrNoSuchVhost), errors.Is(err, directory.ErrNoSuchUser), errors.Is(err, directory.ErrEmptyName),
		errors.Is(err, directory.ErrBadUserName):
		return badRequest("%v", err)
	}
	return badRequest("%s", fieldOf(err))
}
