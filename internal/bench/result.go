package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Latency summarises a Histogram in milliseconds.
type Latency struct {
	Kind    string  `json:"kind"` // "end-to-end", "ack" (PUBLISH → PUBACK/PUBCOMP) or "connack"
	Samples uint64  `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
	Max     float64 `json:"max_ms"`
	Mean    float64 `json:"mean_ms"`
}

func summarise(kind string, h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{Kind: kind, Samples: h.Count(), P50: ms(h.Quantile(0.50)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

// Result is what one run measured. Rates are per second of the publishing window (Seconds);
// messages received while draining after it count towards Received.
type Result struct {
	Scenario    Scenario `json:"scenario"`
	Clients     int      `json:"clients"`
	Publishers  int      `json:"publishers"`
	Subscribers int      `json:"subscribers"`
	QoS         byte     `json:"qos"`
	Size        int      `json:"size"`
	Version     byte     `json:"mqtt_version"`
	Rate        float64  `json:"rate"`          // offered per publisher, 0 = unlimited
	Offered     float64  `json:"offered_per_s"` // Rate × Publishers, 0 = unlimited
	Seconds     float64  `json:"seconds"`
	// DrainSeconds is how long deliveries and acknowledgements kept arriving after the window
	// (at most Config.Drain): the broker's backlog when publishing stopped.
	DrainSeconds float64 `json:"drain_seconds"`
	// DrainRate is, for the offline scenario, the messages delivered per second from the
	// subscribers' reconnection until their queues were empty.
	DrainRate float64 `json:"drain_per_s,omitempty"`

	Sent         int64    `json:"sent"`
	SentRate     float64  `json:"sent_per_s"`
	Skipped      int64    `json:"skipped"` // scheduled messages not sent because a publisher fell behind
	Acked        int64    `json:"acked"`   // QoS 1/2 flows completed
	Rejected     int64    `json:"rejected"`
	Expected     int64    `json:"expected"` // Sent × subscribers that should receive each message
	ExpectedRate float64  `json:"expected_per_s"`
	Received     int64    `json:"received"`
	ReceivedRate float64  `json:"received_per_s"`
	Loss         *float64 `json:"loss_pct"` // null when nothing was expected
	Gaps         int64    `json:"gaps"`     // sequence numbers never received (sum over subscribers)
	Duplicates   int64    `json:"duplicates"`

	Latency    Latency  `json:"latency"`
	AckLatency *Latency `json:"ack_latency,omitempty"` // QoS 1/2 publishers in delivery scenarios

	Connects        int     `json:"connects,omitempty"` // conn scenario
	ConnectFailures int     `json:"connect_failures,omitempty"`
	ConnectRate     float64 `json:"connect_per_s,omitempty"`
	Alive           int     `json:"alive,omitempty"` // connections that answered PINGREQ after the hold

	Errors      int    `json:"errors"`
	FirstError  string `json:"first_error,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// WriteJSON writes r as one line of JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes r for people.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	rate := "unlimited"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%s msg/s per publisher", num(r.Rate))
	}
	version := map[byte]string{3: "3.1", 4: "3.1.1", 5: "5.0"}[r.Version]
	switch r.Scenario {
	case Conn:
		p("scenario conn: %d connections, MQTT %s\n", r.Clients, version)
		p("connected  %d (%d failed) at %s conn/s\n", r.Connects, r.ConnectFailures, num(r.ConnectRate))
		p("alive      %d after holding %.1f s\n", r.Alive, r.Seconds)
	default:
		p("scenario %s: %d publishers, %d subscribers, QoS %d, %d B payload, MQTT %s, rate %s\n",
			r.Scenario, r.Publishers, r.Subscribers, r.QoS, r.Size, version, rate)
		p("window     %.2f s", r.Seconds)
		if r.DrainSeconds > 0 {
			p(" + %.2f s draining", r.DrainSeconds)
		}
		p("\n")
		if r.Publishers > 0 {
			p("sent       %s msg/s  (%d messages", num(r.SentRate), r.Sent)
			if r.Skipped > 0 {
				p(", %d skipped: publishers fell behind", r.Skipped)
			}
			if r.QoS > 0 {
				p(", %d acknowledged", r.Acked)
				if r.Rejected > 0 {
					p(", %d rejected", r.Rejected)
				}
			}
			p(")\n")
		}
		if r.Expected > 0 || r.Subscribers > 0 {
			p("expected   %s msg/s  (%d messages)\n", num(r.ExpectedRate), r.Expected)
			p("received   %s msg/s  (%d messages)\n", num(r.ReceivedRate), r.Received)
		}
		if r.DrainRate > 0 {
			p("drained    %s msg/s  (%d messages in %.2f s after the subscribers came back)\n", num(r.DrainRate), r.Received, r.DrainSeconds)
		}
		if r.Loss != nil {
			p("loss       %.3f %%  (%d gaps, %d duplicates)\n", *r.Loss, r.Gaps, r.Duplicates)
		}
	}
	writeLat := func(l *Latency) {
		if l.Samples == 0 {
			return
		}
		p("latency    p50 %s  p99 %s  p99.9 %s  max %s ms  (%s, %d samples)\n",
			msec(l.P50), msec(l.P99), msec(l.P999), msec(l.Max), l.Kind, l.Samples)
	}
	writeLat(&r.Latency)
	if r.AckLatency != nil {
		writeLat(r.AckLatency)
	}
	if r.Errors > 0 {
		p("errors     %d, first: %s\n", r.Errors, r.FirstError)
	}
	if r.Interrupted {
		p("interrupted before the end of the run\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// num formats a rate with thousands separators.
func num(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func msec(f float64) string {
	switch {
	case f < 1:
		return fmt.Sprintf("%.3f", f)
	case f < 100:
		return fmt.Sprintf("%.2f", f)
	}
	return fmt.Sprintf("%.0f", f)
}
