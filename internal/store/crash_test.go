package store

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "TURNSTILE_STORE_CRASH_CHILD_DIR"

// crashWriters is how many goroutines the child writes with; each owns client "c<g>".
const crashWriters = 8

func crashPayload(seq uint64) []byte {
	return []byte(fmt.Sprintf("message %d %s", seq, strings.Repeat("z", int(seq%300))))
}

// The child (this test binary re-executed with crashChildEnv set) writes with FsyncAlways and
// prints "durable <seq>" for each message once its ticket is durable; the parent kills it with
// SIGKILL after a varying number of lines, reopens the directory and checks that every message
// printed as durable is there, with its queue entry. Three rounds on the same directory: each
// recovery starts from the previous one's state.
func TestCrashKillKeepsDurableWrites(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	dir := t.TempDir()
	durable := map[uint64]bool{}
	for round, killAfter := range []int{300, 1500, 40} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKillKeepsDurableWrites$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		seen := 0
		deadline := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
		for sc.Scan() {
			f, ok := strings.CutPrefix(sc.Text(), "durable ")
			if !ok {
				continue
			}
			seq, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			durable[seq] = true
			if seen++; seen == killAfter {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		deadline.Stop()
		// Lines already in the pipe were durable too.
		for sc.Scan() {
			if f, ok := strings.CutPrefix(sc.Text(), "durable "); ok {
				seq, _ := strconv.ParseUint(f, 10, 64)
				durable[seq] = true
			}
		}
		_ = cmd.Wait()
		if seen < killAfter {
			t.Fatalf("round %d: the child stopped after %d durable lines:\n%s", round, seen, stderr.String())
		}

		s, lb := openTest(t, dir, FsyncAlways)
		queued := map[uint64]bool{}
		for g := range crashWriters {
			err := s.LoadQueue("v", fmt.Sprintf("c%d", g), 0, 0, func(e *QueueEntry) error {
				if e.MsgID != e.Seq {
					return fmt.Errorf("entry %d refers to message %d", e.Seq, e.MsgID)
				}
				queued[e.Seq] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		missing := 0
		for seq := range durable {
			m, err := s.LoadMessage(seq)
			if err != nil || !bytes.Equal(m.Payload, crashPayload(seq)) || !queued[seq] {
				missing++
				if missing < 5 {
					t.Errorf("round %d: message %d was reported durable but is not recovered (err %v, queued %v)", round, seq, err, queued[seq])
				}
			}
		}
		if len(loadAllSessions(t, s)) != crashWriters {
			t.Errorf("round %d: sessions lost", round)
		}
		t.Logf("round %d: killed after %d durable lines; %d reported durable so far, %d recovered queue entries, %d missing; recovery log: %s",
			round, killAfter, len(durable), len(queued), missing, grepLines(lb.String(), "WAL recovery"))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
	}
}

// crashChild writes until killed. Sequence numbers continue after what the directory holds.
func crashChild(dir string) {
	s, err := Open(dir, Options{Fsync: FsyncAlways})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	next, err := s.MaxMessageID()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	for g := range crashWriters {
		s.PutSession(&SessionRecord{Vhost: "v", ClientID: fmt.Sprintf("c%d", g), Version: 5, ExpiryInterval: 3600,
			Subscriptions: []SubscriptionRecord{{Filter: "#", QoS: 1}}})
	}
	// Callbacks must not block: they append, a printer goroutine writes.
	var (
		mu      sync.Mutex
		ready   []uint64
		wake    = make(chan struct{}, 1)
		counter = next
		cmu     sync.Mutex
	)
	go func() {
		w := bufio.NewWriter(os.Stdout)
		for range wake {
			mu.Lock()
			batch := ready
			ready = nil
			mu.Unlock()
			for _, seq := range batch {
				fmt.Fprintf(w, "durable %d\n", seq)
			}
			_ = w.Flush()
		}
	}()
	time.AfterFunc(30*time.Second, func() { os.Exit(3) }) // never outlive a lost parent
	for g := range crashWriters {
		go func() {
			cid := fmt.Sprintf("c%d", g)
			for {
				cmu.Lock()
				counter++
				seq := counter
				cmu.Unlock()
				s.PutMessage(seq, &MessageRecord{Topic: "t/" + cid, Payload: crashPayload(seq), QoS: 1})
				tk := s.PutQueueEntry("v", cid, &QueueEntry{Seq: seq, MsgID: seq, QoS: 1})
				done := make(chan struct{})
				s.Notify(tk, func() {
					mu.Lock()
					ready = append(ready, seq)
					mu.Unlock()
					select {
					case wake <- struct{}{}:
					default:
					}
					close(done)
				})
				<-done
			}
		}()
	}
	select {}
}
