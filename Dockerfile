# syntax=docker/dockerfile:1
#
# Turnstile in a container: a static binary (CGO_ENABLED=0) on a distroless base, running as a
# non-root user, its state in the volume /var/lib/turnstile. See docs/install.md.
#
#   docker build -t turnstile --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d --name turnstile -p 1883:1883 -p 15672:15672 -v turnstile-data:/var/lib/turnstile turnstile
#   docker exec turnstile turnstile ctl add_user alice s3cret

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION and BUILD_TIME end up in `turnstile version`; .git is not copied into the build
# context (see .dockerignore), so Go records no commit of its own.
ARG VERSION=""
ARG BUILD_TIME=""
RUN set -eu; \
    pkg=github.com/turnstilemq/turnstile/internal/cli; \
    ldflags="-s -w"; \
    if [ -n "$VERSION" ]; then ldflags="$ldflags -X $pkg.Version=$VERSION"; fi; \
    if [ -n "$BUILD_TIME" ]; then ldflags="$ldflags -X $pkg.BuildTime=$BUILD_TIME"; fi; \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o /out/turnstile ./cmd/turnstile; \
    /out/turnstile version; \
    /out/turnstile validate-config --config dist/container.ini; \
    mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/turnstile /usr/local/bin/turnstile
COPY dist/container.ini /etc/turnstile/turnstile.ini
# The data directory belongs to the image's non-root user (nonroot, uid 65532).
COPY --from=build --chown=65532:65532 /out/data /var/lib/turnstile
USER 65532:65532
VOLUME ["/var/lib/turnstile"]
# MQTT and the management API; 8883, 8083, 8084 and 15671 once TLS or WebSocket are configured.
EXPOSE 1883 15672
# Healthy once the broker accepts connections (GET /api/health/ready, unauthenticated), asked
# from inside the container. It needs the management API on [mgmt] port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/turnstile", "ctl", "wait-ready", "--timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/turnstile"]
CMD ["serve", "--config", "/etc/turnstile/turnstile.ini"]
