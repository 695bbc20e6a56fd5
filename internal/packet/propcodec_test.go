package packet

import (
	"reflect"
	"testing"
)

func TestPropertiesRoundTrip(t *testing.T) {
	in := Properties{
		PayloadFormat: 1, HasPayloadFormat: true,
		MessageExpiry: 30, HasMessageExpiry: true,
		ContentType: "application/json", ResponseTopic: "reply/to",
		CorrelationData: []byte{1, 2, 3},
		User:            []UserProperty{{"a", "1"}, {"a", "2"}, {"b", ""}},
	}
	b := AppendProperties(nil, &in, PUBLISH)
	out, err := DecodeProperties(b, PUBLISH)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	if _, err := DecodeProperties(append(b, 0), PUBLISH); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if _, err := DecodeProperties(b[:len(b)-1], PUBLISH); err == nil {
		t.Fatal("truncated properties accepted")
	}
}
