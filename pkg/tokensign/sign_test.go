package tokensign

import (
	"net/url"
	"testing"
)

// Alibaba's ECS example of the RPC signature (doc 28139; tokens.md §3).
func TestRPCSignatureAlibabaVector(t *testing.T) {
	p := url.Values{}
	p.Set("AccessKeyId", "testid")
	p.Set("Action", "DescribeRegions")
	p.Set("Format", "XML")
	p.Set("SignatureMethod", "HMAC-SHA1")
	p.Set("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf")
	p.Set("SignatureVersion", "1.0")
	p.Set("Timestamp", "2016-02-23T12:46:24Z")
	p.Set("Version", "2014-05-26")
	wantSTS := "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
	if got := StringToSign("GET", p); got != wantSTS {
		t.Fatalf("StringToSign =\n%s\nwant\n%s", got, wantSTS)
	}
	sig, err := RPCSignature("GET", p, "testsecret")
	if err != nil || sig != "OLeaidS1JvxuMvnyHOwuJ+uX5qY=" {
		t.Fatalf("RPCSignature = %q, %v; want OLeaidS1JvxuMvnyHOwuJ+uX5qY=", sig, err)
	}
	// The Signature parameter itself is not signed.
	p.Set("Signature", sig)
	if again, _ := RPCSignature("GET", p, "testsecret"); again != sig {
		t.Fatalf("signature changed when Signature was present: %q", again)
	}
	// SHA-256: same string and key, another MAC.
	p.Set("SignatureMethod", "HMAC-SHA256")
	s256, err := RPCSignature("GET", p, "testsecret")
	if err != nil || len(s256) != 44 || s256 == sig {
		t.Fatalf("HMAC-SHA256 signature %q, %v", s256, err)
	}
	p.Set("SignatureMethod", "HMAC-MD5")
	if _, err := RPCSignature("GET", p, "testsecret"); err != ErrMethod {
		t.Fatalf("HMAC-MD5: err = %v, want ErrMethod", err)
	}
}

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{
		"a-Z_0.9~":  "a-Z_0.9~",
		"a b":       "a%20b",
		"a+b*c":     "a%2Bb%2Ac",
		"a/#,+":     "a%2F%23%2C%2B",
		"é":         "%C3%A9",
		"12:46:24Z": "12%3A46%3A24Z",
	} {
		if got := PercentEncode(in); got != want {
			t.Errorf("PercentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

// The legacy form's doc example (doc 54274; tokens.md §3).
func TestLegacyStringToSignDocExample(t *testing.T) {
	p := url.Values{}
	p.Set("parama", "a")
	p.Set("paramc", "c2,c1")
	p.Set("paramb", "b2,b1,b3")
	p.Set("signature", "ignored")
	p.Set("accessKey", "ignored")
	p.Set("proxyType", "MQTT")
	if got, want := LegacyStringToSign(p), "parama=a&paramb=b1,b2,b3&paramc=c1,c2"; got != want {
		t.Fatalf("LegacyStringToSign = %q, want %q", got, want)
	}
	// Repeated parameters count as several values.
	q := url.Values{"paramc": {"c2", "c1"}, "parama": {"a"}, "paramb": {"b3", "b1,b2"}}
	if got, want := LegacyStringToSign(q), "parama=a&paramb=b1,b2,b3&paramc=c1,c2"; got != want {
		t.Fatalf("LegacyStringToSign(repeated) = %q, want %q", got, want)
	}
	if LegacyRequestSignature(p, "s") != mac("s", "parama=a&paramb=b1,b2,b3&paramc=c1,c2") {
		t.Fatal("LegacyRequestSignature does not sign LegacyStringToSign")
	}
}

// The Signature-mode password vector (tokens.md §4).
func TestMQTTPasswordVector(t *testing.T) {
	if got := MQTTPassword("testsecret", "GID_Test@@@0001"); got != "2o53J4IhwPZouH+0Qu6KWaZ6foc=" {
		t.Fatalf("MQTTPassword = %q, want 2o53J4IhwPZouH+0Qu6KWaZ6foc=", got)
	}
}

func TestEqual(t *testing.T) {
	if !Equal("abc", "abc") || Equal("abc", "abd") || Equal("abc", "ab") {
		t.Fatal("Equal is wrong")
	}
}
