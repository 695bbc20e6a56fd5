package appserver_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/tokens"
)

// examples/sign.sh, the curl example of docs/tokens.md: Alibaba's vector, and a real
// ApplyToken and QueryToken against the token service.
func TestSignScript(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "curl", "base64", "paste"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	script := "../../sign.sh"
	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sign.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run([]string{"SIGN_ONLY=1", "TURNSTILE_ACCESS_KEY_ID=testid", "TURNSTILE_ACCESS_KEY_SECRET=testsecret"},
		"Action=DescribeRegions", "Format=XML", "SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
		"Timestamp=2016-02-23T12:46:24Z", "Version=2014-05-26")
	if !strings.HasSuffix(out, "\nOLeaidS1JvxuMvnyHOwuJ+uX5qY=\n") {
		t.Fatalf("Alibaba's vector: %s", out)
	}

	key := make([]byte, 32)
	rand.Read(key)
	svc, err := tokens.New(tokens.Options{MasterKey: key, Owners: owners{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(tokens.Handler(svc))
	defer ts.Close()
	akid, secret, _ := svc.CreateAccessKey("app", "iot")
	for _, method := range []string{"HMAC-SHA1", "HMAC-SHA256"} {
		env := []string{"ENDPOINT=" + ts.URL, "TURNSTILE_ACCESS_KEY_ID=" + akid, "TURNSTILE_ACCESS_KEY_SECRET=" + secret, "SIGNATURE_METHOD=" + method}
		var apply struct{ RequestId, Token, Code, Message string }
		out = run(env, "Action=ApplyToken", "InstanceId=iot", "Resources=devices/dev1/#,devices/+/status", "Actions=R,W",
			"ExpireTime="+strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10))
		if json.Unmarshal([]byte(out), &apply) != nil || apply.Token == "" {
			t.Fatalf("%s ApplyToken: %s", method, out)
		}
		var query struct{ TokenStatus bool }
		out = run(env, "Action=QueryToken", "InstanceId=iot", "Token="+apply.Token)
		if json.Unmarshal([]byte(out), &query) != nil || !query.TokenStatus {
			t.Fatalf("%s QueryToken: %s", method, out)
		}
	}
}
