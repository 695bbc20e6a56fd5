#!/usr/bin/env bash
# sign.sh: call Turnstile's token API (RPC form, SignatureVersion 1.0) with curl and openssl.
#
#   TURNSTILE_ACCESS_KEY_ID=TK... TURNSTILE_ACCESS_KEY_SECRET=... \
#   ENDPOINT=http://127.0.0.1:8089/ \
#   examples/sign.sh Action=ApplyToken InstanceId=/ Resources='devices/dev1/#' Actions=R,W \
#       ExpireTime=$(( ($(date +%s) + 3600) * 1000 ))
#
# Parameters given as arguments override the common ones (Version, Format, SignatureMethod,
# SignatureNonce, Timestamp, ...). SIGNATURE_METHOD=HMAC-SHA256 signs with SHA-256. With
# SIGN_ONLY=1 it prints the string to sign and the signature instead of calling the API.
# The request goes out as GET; the parameters (and a token, for QueryToken and RevokeToken)
# are then in the URL: prefer the Go client (pkg/tokenclient), which POSTs, in production.
set -euo pipefail

: "${TURNSTILE_ACCESS_KEY_ID:?set TURNSTILE_ACCESS_KEY_ID}"
: "${TURNSTILE_ACCESS_KEY_SECRET:?set TURNSTILE_ACCESS_KEY_SECRET}"
ENDPOINT=${ENDPOINT:-http://127.0.0.1:8089/}
METHOD=${SIGNATURE_METHOD:-HMAC-SHA1}

# RFC 3986 percent-encoding: A-Z a-z 0-9 - _ . ~ kept, every other byte %XY.
enc() {
	local LC_ALL=C s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

declare -A p=(
	[Version]=2020-04-20
	[Format]=JSON
	[AccessKeyId]=$TURNSTILE_ACCESS_KEY_ID
	[SignatureMethod]=$METHOD
	[SignatureVersion]=1.0
	[SignatureNonce]=$(openssl rand -hex 16)
	[Timestamp]=$(date -u +%Y-%m-%dT%H:%M:%SZ)
)
for kv in "$@"; do
	p[${kv%%=*}]=${kv#*=}
done

canonical=$(
	for k in "${!p[@]}"; do
		printf '%s=%s\n' "$(enc "$k")" "$(enc "${p[$k]}")"
	done | LC_ALL=C sort -t= -k1,1 | paste -sd'&' -
)
sts="GET&%2F&$(enc "$canonical")"
case ${p[SignatureMethod]} in
HMAC-SHA1) dgst=-sha1 ;;
HMAC-SHA256) dgst=-sha256 ;;
*) echo "sign.sh: SignatureMethod must be HMAC-SHA1 or HMAC-SHA256" >&2; exit 2 ;;
esac
sig=$(printf '%s' "$sts" | openssl dgst "$dgst" -hmac "$TURNSTILE_ACCESS_KEY_SECRET&" -binary | base64)

if [[ ${SIGN_ONLY:-} == 1 ]]; then
	printf '%s\n%s\n' "$sts" "$sig"
	exit 0
fi
curl -sS "${ENDPOINT%/}/?$canonical&Signature=$(enc "$sig")"
echo
