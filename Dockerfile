# syntax=docker/dockerfile:1
# volguard: a static (musl) binary on distroless/static, running as the nonroot user (65532).
# rustls with ring needs no OpenSSL, so nothing but the binary goes into the image.
#
#   docker build -t volguard:dev .

FROM rust:1.89-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
ARG TARGETARCH=amd64
WORKDIR /src
COPY . .
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    rustup target add "$target"; \
    cargo build --profile dist --locked --bin volguard --target "$target"; \
    cp "target/$target/dist/volguard" /volguard; \
    strip /volguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /volguard /usr/local/bin/volguard
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/volguard"]
CMD ["serve"]
