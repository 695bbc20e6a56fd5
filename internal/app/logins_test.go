package app_test

// The login limiter through the whole program (docs/security.md, "Logins"): the management API
// and MQTT share one limiter, the API answers a limited login with 429, and an unknown user
// costs what a wrong password does.

import (
	"context"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/turnstilemq/turnstile/internal/event"
)

// clientFrom is an HTTP client whose connections come from the local address local.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{Timeout: waitTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// 40 parallel password guesses on the API from one address: 10 are checked (401), the rest
// refused unchecked with 429 and Retry-After. The owner from another address logs in at once;
// over MQTT from the attacked address the same user is refused with 0x9F (or let in late),
// never 0x86: one chain, one limiter.
func TestManagementLoginLimit(t *testing.T) {
	t.Parallel()
	a, _ := run(t, testConfig(t))
	base := a.URL()
	attacker := clientFrom("127.0.0.1")
	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := map[string]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", base+"/api/overview", nil)
			req.SetBasicAuth("guest", "guess-"+strconv.Itoa(i))
			res, err := attacker.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			mu.Lock()
			codes[res.StatusCode]++
			if res.StatusCode == 429 {
				retryAfter[res.Header.Get("Retry-After")]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[401] != 10 || codes[429] != 30 || retryAfter["5"] != 30 {
		t.Fatalf("40 parallel API guesses: %v, Retry-After %v; want 10 × 401 and 30 × 429 with Retry-After 5", codes, retryAfter)
	}
	delayed := a.Counters().Total(event.LoginDelayed)
	if code, body := get(t, clientFrom("127.0.0.2"), base+"/api/overview", "guest", "guest"); code != 200 {
		t.Fatalf("the owner from another address: %d %s", code, body)
	}
	if a.Counters().Total(event.LoginDelayed) != delayed {
		t.Fatal("the owner's login from another address was delayed by the limiter")
	}
	// The same limiter holds the user on MQTT from the attacked address.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
	conn, err := d.Dial("tcp", a.Addr("tcp").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ack, _ := c.Connect(ctx, &paho.Connect{ClientID: "mqtt-after-api", CleanStart: true, KeepAlive: 30,
		Username: "guest", UsernameFlag: true, Password: []byte("guest"), PasswordFlag: true})
	if ack == nil || (ack.ReasonCode != 0x9F && ack.ReasonCode != 0) {
		t.Fatalf("MQTT login after the API guesses: %+v, want 0x9F or a late success", ack)
	}
	f := a.Counters().ByReason(event.LoginFailed)
	if f[event.ReasonRateLimited] < 30 || f[event.ReasonBadCredentials] != 10 {
		t.Fatalf("login failures %v", f)
	}
}

// An unknown user costs what a known one with a wrong password does (the dummy hash, at the
// production bcrypt cost): the answer's timing does not tell whether a user exists.
func TestManagementLoginTimingAlike(t *testing.T) {
	t.Parallel()
	a, _ := run(t, testConfig(t))
	base := a.URL()
	// The two kinds of attempt take turns, so that a moment of load on a shared machine falls
	// on both, and each is the median of nine.
	const rounds = 9
	users := []string{"guest", "nobody-here"}
	ds := make([][]time.Duration, len(users))
	for i := range rounds {
		for k, user := range users {
			// One address per attempt, so the limiter never delays what is measured.
			hc := clientFrom("127.0.1." + strconv.Itoa(k*rounds+i+1))
			start := time.Now()
			if code, _ := get(t, hc, base+"/api/overview", user, "wrong"); code != 401 {
				t.Fatalf("%s: %d", user, code)
			}
			ds[k] = append(ds[k], time.Since(start))
		}
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	known, unknown := median(ds[0]), median(ds[1])
	t.Logf("wrong password for a known user: %v; unknown user: %v", known, unknown)
	if unknown < known/3 || unknown > known*3 {
		t.Fatalf("an unknown user takes %v, a known one %v: the timing tells them apart", unknown, known)
	}
}
