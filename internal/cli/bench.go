package cli

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/turnstilemq/turnstile/internal/bench"
)

func newBenchCmd() *cobra.Command {
	cfg := bench.DefaultConfig()
	var (
		scenario   string
		qos        uint8
		version    uint8
		jsonOut    bool
		cpuProfile string
	)
	names := make([]string, len(bench.Scenarios))
	for i, s := range bench.Scenarios {
		names[i] = string(s)
	}
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "Load-test an MQTT broker: connect rate, throughput, loss and latency",
		Long: `bench drives an MQTT broker over raw connections with pre-encoded packets and reports
messages sent, expected and received per second, the loss, and the latency carried in each payload.

Scenarios (topics are <topic>/<i>):
  conn    open --clients connections, report the connect rate, hold them for --duration
  pub     --clients publishers and no subscriber (QoS 1/2: latency is the acknowledgement)
  sub     --clients subscribers on <topic>/# receiving what others publish (e.g. a pub run)
  fanin   --clients publishers to one subscriber on <topic>/+
  fanout  one publisher to --clients subscribers
  pairs   --clients publisher/subscriber pairs, each on its own topic
  offline pairs whose persistent subscribers are away while the publishers publish for --duration;
          then they come back, and the drain of their queues is timed (raise --drain for big queues)

--rate is per publisher; 0 publishes as fast as the broker takes it (QoS 1/2 within --inflight
unacknowledged messages per publisher).`,
		Example: `  turnstile bench --scenario fanin --clients 8 --qos 0 --size 64 --duration 10s
  turnstile bench --scenario pairs --clients 8 --qos 1 --rate 5000 --json
  turnstile bench --scenario conn --clients 5000 --duration 30s
  turnstile bench --scenario conn --clients 10000 --users 10000 --username u --password 'p{i}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Scenario = bench.Scenario(scenario)
			cfg.QoS, cfg.Version = qos, version
			if cfg.TLS && !cmd.Flags().Changed("port") {
				cfg.Port = 8883
			}
			if err := cfg.Validate(); err != nil {
				reportErrors(cmd.ErrOrStderr(), err)
				return errReported
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := bench.Run(ctx, cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if jsonOut {
				return r.WriteJSON(cmd.OutOrStdout())
			}
			return r.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", string(cfg.Scenario), "traffic shape: "+strings.Join(names, ", "))
	f.IntVar(&cfg.Clients, "clients", cfg.Clients, "publishers, subscribers, pairs or connections, per the scenario")
	f.Uint8Var(&qos, "qos", cfg.QoS, "QoS of the messages and subscriptions: 0, 1 or 2")
	f.IntVar(&cfg.Size, "size", cfg.Size, fmt.Sprintf("payload `bytes` (at least %d: timestamp and sequence number)", bench.MinSize))
	f.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic `prefix`")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to publish (conn: to hold the connections)")
	f.Float64Var(&cfg.Rate, "rate", cfg.Rate, "messages per second per publisher; 0 = as fast as possible")
	f.IntVar(&cfg.Inflight, "inflight", cfg.Inflight, "unacknowledged QoS 1/2 messages per publisher")
	f.DurationVar(&cfg.Drain, "drain", cfg.Drain, "how long to wait for deliveries in flight when publishing stops")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "connections opened at the same time")
	f.StringVar(&cfg.Host, "host", cfg.Host, "broker host")
	f.IntVar(&cfg.Port, "port", cfg.Port, "broker port (8883 with --tls unless given)")
	f.StringVar(&cfg.Username, "username", "", "user name sent in CONNECT")
	f.StringVar(&cfg.Password, "password", "", "password sent in CONNECT")
	f.IntVar(&cfg.Users, "users", 0, "log connection i in as user i mod N: {i} in --username and --password becomes that number (appended to the user name without one)")
	f.StringVar(&cfg.Credentials, "credentials", "", "`file` of \"user<TAB>password\" lines; connection i logs in with line i mod their number")
	f.BoolVar(&cfg.TLS, "tls", false, "connect with TLS")
	f.StringVar(&cfg.CAFile, "cafile", "", "PEM `file` of CA certificates to verify the broker (system roots when empty)")
	f.BoolVar(&cfg.Insecure, "insecure", false, "do not verify the broker's TLS certificate")
	f.StringVar(&cfg.Filter, "filter", "", "topic `filter` every subscriber subscribes to instead of the scenario's (it must match the published topics)")
	f.BoolVar(&cfg.Persistent, "persistent", false, "subscribers keep their sessions (clean session 0; 5.0: Session Expiry an hour)")
	f.Uint8Var(&version, "mqtt-version", cfg.Version, "protocol level: 3 (3.1), 4 (3.1.1) or 5 (5.0)")
	f.BoolVar(&jsonOut, "json", false, "print the result as one line of JSON")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench itself to `file`")
	return cmd
}
