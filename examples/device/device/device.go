package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// The $SYS topics of token mode.
const (
	TopicUpload        = "$SYS/uploadToken"
	TopicExpireNotice  = "$SYS/tokenExpireNotice"
	TopicInvalidNotice = "$SYS/tokenInvalidNotice"
)

// ErrCutOff: the device's token was revoked or is no longer accepted; the device stopped.
var ErrCutOff = errors.New("device: cut off: the token was revoked or is no longer accepted")

// Config configures the example device.
type Config struct {
	AppServer string // the application server's base URL, e.g. "http://127.0.0.1:8081"
	Device    string
	Secret    string
	Broker    string // e.g. "tcp://127.0.0.1:1883"
	ClientID  string // default "GID_device@@@<Device>"

	Resources    []string // default "devices/<Device>/#"
	Actions      string   // default "R,W"
	PublishTopic string   // default "devices/<Device>/telemetry"
	PublishEvery time.Duration
	// RefreshLead: the device applies for a new token and uploads it this long before its
	// token expires (default 1 min). Keep it under the application server's refresh lead, so
	// that the server applies for a new token rather than serve the cached one.
	RefreshLead time.Duration
	// SubscribeNotices subscribes to the notice topics, for listeners whose notice mode is
	// "subscribed"; in "push" mode (the default) they arrive without a subscription.
	SubscribeNotices bool

	OnMessage  func(topic string, payload []byte) // messages on the device's subscriptions
	OnEvent    func(event string)                 // "connected", "published", "refreshed", "cut off", …
	HTTPClient *http.Client
	Logger     *slog.Logger
}

func (c *Config) defaults() {
	if c.ClientID == "" {
		c.ClientID = "GID_device@@@" + c.Device
	}
	if len(c.Resources) == 0 {
		c.Resources = []string{"devices/" + c.Device + "/#"}
	}
	if c.Actions == "" {
		c.Actions = "R,W"
	}
	if c.PublishTopic == "" {
		c.PublishTopic = "devices/" + c.Device + "/telemetry"
	}
	if c.PublishEvery <= 0 {
		c.PublishEvery = 5 * time.Second
	}
	if c.RefreshLead <= 0 {
		c.RefreshLead = time.Minute
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.OnEvent == nil {
		c.OnEvent = func(string) {}
	}
}

// Rights is the application server's answer.
type Rights struct {
	Token    string `json:"token"`
	Type     string `json:"type"`
	ExpireAt int64  `json:"expire_at"` // Unix milliseconds
	Username string `json:"username"`
}

// Expiry returns the token's expiry.
func (r *Rights) Expiry() time.Time { return time.UnixMilli(r.ExpireAt) }

// Password returns the CONNECT password: "<type>|<token>".
func (r *Rights) Password() string { return r.Type + "|" + r.Token }

// FetchRights asks the application server for a token.
func FetchRights(ctx context.Context, cfg *Config) (*Rights, error) {
	body, _ := json.Marshal(map[string]any{"device": cfg.Device, "secret": cfg.Secret,
		"resources": cfg.Resources, "actions": cfg.Actions})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cfg.AppServer, "/")+"/rights", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("device: asking for rights: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("device: the application server answered %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var r Rights
	if err := json.Unmarshal(b, &r); err != nil || r.Token == "" || r.Username == "" {
		return nil, errors.New("device: the application server's answer has no token")
	}
	return &r, nil
}

// UploadPayload is the $SYS/uploadToken payload for a token.
func UploadPayload(token, typ string) []byte {
	b, _ := json.Marshal(map[string]string{"token": token, "type": typ})
	return b
}

// notice is a $SYS notice as received.
type notice struct {
	Topic      string
	Code       int   `json:"code"`
	ExpireTime int64 `json:"expireTime"`
}

type device struct {
	cfg     Config
	log     *slog.Logger
	mu      sync.Mutex
	rights  *Rights
	notices chan notice
	lost    chan error
}

// Run runs the device until ctx is done (nil), it is cut off (ErrCutOff) or it fails.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	d := &device{cfg: cfg, log: cfg.Logger, notices: make(chan notice, 8), lost: make(chan error, 1)}
	r, err := FetchRights(ctx, &d.cfg)
	if err != nil {
		return err
	}
	d.rights = r
	cl, err := d.connect()
	if err != nil {
		return err
	}
	defer func() {
		if cl.IsConnectionOpen() {
			cl.Disconnect(250)
		}
	}()
	pub := time.NewTicker(cfg.PublishEvery)
	defer pub.Stop()
	refresh := time.NewTimer(d.untilRefresh())
	defer refresh.Stop()
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-pub.C:
			seq++
			t := cl.Publish(cfg.PublishTopic, 1, false, fmt.Sprintf(`{"seq":%d}`, seq))
			if t.WaitTimeout(10*time.Second) && t.Error() == nil {
				cfg.OnEvent("published")
			}
		case <-refresh.C:
			refresh.Reset(d.refresh(ctx, cl))
		case n := <-d.notices:
			switch {
			case n.Topic == TopicExpireNotice:
				d.log.Info("device: token expires soon", "expire_at", time.UnixMilli(n.ExpireTime))
				refresh.Reset(d.refresh(ctx, cl))
			case n.Code == 3:
				d.log.Warn("device: token revoked")
				cfg.OnEvent("cut off")
				return ErrCutOff
			default:
				// Expired or otherwise invalid: apply again and reconnect.
				d.log.Warn("device: token invalid", "code", n.Code)
				if cl, err = d.reconnect(ctx, cl); err != nil {
					return err
				}
				refresh.Reset(d.untilRefresh())
			}
		case err := <-d.lost:
			d.log.Warn("device: connection lost", "err", err)
			// The close may come before the notice: try again with the token held. A refusal
			// (return code 4) means it is no longer accepted.
			select {
			case n := <-d.notices:
				if n.Code == 3 {
					cfg.OnEvent("cut off")
					return ErrCutOff
				}
			default:
			}
			if cl, err = d.dial(); err != nil {
				return err
			}
		}
	}
}

// untilRefresh is how long until the token should be replaced.
func (d *device) untilRefresh() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(time.Until(d.rights.Expiry().Add(-d.cfg.RefreshLead)), time.Second)
}

// refresh applies for a new token and uploads it; it returns when to refresh next.
func (d *device) refresh(ctx context.Context, cl mqtt.Client) time.Duration {
	r, err := FetchRights(ctx, &d.cfg)
	if err != nil {
		d.log.Warn("device: refresh failed", "err", err)
		return 10 * time.Second
	}
	d.mu.Lock()
	same := r.Token == d.rights.Token
	d.mu.Unlock()
	if same {
		return 10 * time.Second // the server's cache still serves it: try again shortly
	}
	// QoS 1: the PUBACK comes only after the broker swapped the token (tokens.md §6); wait for
	// it before anything else is judged by the new token.
	t := cl.Publish(TopicUpload, 1, false, UploadPayload(r.Token, r.Type))
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		d.log.Warn("device: upload not acknowledged", "err", t.Error())
		return 10 * time.Second
	}
	d.mu.Lock()
	d.rights = r // the next reconnection uses the new token too
	d.mu.Unlock()
	d.log.Info("device: token refreshed", "expire_at", r.Expiry())
	d.cfg.OnEvent("refreshed")
	return d.untilRefresh()
}

func (d *device) reconnect(ctx context.Context, cl mqtt.Client) (mqtt.Client, error) {
	cl.Disconnect(250)
	r, err := FetchRights(ctx, &d.cfg)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.rights = r
	d.mu.Unlock()
	return d.dial()
}

func (d *device) dial() (mqtt.Client, error) {
	cl, err := d.connect()
	if errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		d.cfg.OnEvent("cut off")
		return nil, ErrCutOff
	}
	return cl, err
}

// connect opens an MQTT 3.1.1 connection as Alibaba's samples do: clean session, keep-alive
// 90 s, and subscribes.
func (d *device) connect() (mqtt.Client, error) {
	d.mu.Lock()
	user := d.rights.Username
	d.mu.Unlock()
	opts := mqtt.NewClientOptions().AddBroker(d.cfg.Broker).SetClientID(d.cfg.ClientID).
		SetProtocolVersion(4).SetCleanSession(true).SetKeepAlive(90 * time.Second).
		SetAutoReconnect(false).SetConnectRetry(false).
		SetCredentialsProvider(func() (string, string) {
			d.mu.Lock()
			defer d.mu.Unlock()
			return user, d.rights.Password()
		}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { d.onSys(m) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case d.lost <- err:
			default:
			}
		})
	cl := mqtt.NewClient(opts)
	t := cl.Connect()
	if !t.WaitTimeout(15 * time.Second) {
		return nil, errors.New("device: CONNECT timed out")
	}
	if err := t.Error(); err != nil {
		return nil, fmt.Errorf("device: CONNECT: %w", err)
	}
	d.cfg.OnEvent("connected")
	if strings.Contains(d.cfg.Actions, "R") {
		for _, f := range d.cfg.Resources {
			st := cl.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
				if d.cfg.OnMessage != nil {
					d.cfg.OnMessage(m.Topic(), m.Payload())
				}
			})
			if st.WaitTimeout(10*time.Second) && st.Error() != nil {
				return nil, fmt.Errorf("device: SUBSCRIBE %s: %w", f, st.Error())
			}
		}
	}
	if d.cfg.SubscribeNotices {
		for _, f := range []string{TopicExpireNotice, TopicInvalidNotice} {
			cl.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) { d.onSys(m) }).WaitTimeout(10 * time.Second)
		}
	}
	return cl, nil
}

// onSys takes the notices; other unsolicited messages are ignored.
func (d *device) onSys(m mqtt.Message) {
	if m.Topic() != TopicExpireNotice && m.Topic() != TopicInvalidNotice {
		return
	}
	n := notice{Topic: m.Topic()}
	if json.Unmarshal(m.Payload(), &n) != nil {
		return
	}
	select {
	case d.notices <- n:
	default:
	}
}
