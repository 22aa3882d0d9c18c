# syntax=docker/dockerfile:1
#
# rancher-ecr-credentials: one static binary in an image FROM scratch.
#
# Where the binary comes from is chosen with BINARY_SOURCE:
#   builder (default): compiled here, in the `builder` stage, for the image's TARGETARCH (amd64 or arm64);
#       docker buildx build --platform linux/amd64,linux/arm64 -t rancher-ecr-credentials .
#   host: a static musl binary already built on the build host, taken from the build context (scripts/build-image);
#       docker build --build-arg BINARY_SOURCE=host -t rancher-ecr-credentials:dev .
# With buildah/podman, pass --build-arg BINARY_SOURCE=builder explicitly too: buildah 1.28 does not apply an ARG's
# default when it decides which stages `FROM ${BINARY_SOURCE}` needs, skips `builder`, then looks for an image of
# that name. The base image is named in full (docker.io/library/...) because podman does not expand short names.
#
# The final image holds only the binary, a CA bundle, /etc/passwd and /etc/group, and runs as 65532:65532 (nonroot).

ARG BINARY_SOURCE=builder

# ---------------------------------------------------------------------------------------------------------------------
# builder: compiles a static musl binary. It runs on the target platform (under QEMU for a foreign one), so the
# native musl-gcc from Debian's musl-tools serves both amd64 and arm64 with no cross toolchain.
# A literal tag (no ARG) so that Dependabot can propose updates to it.
FROM docker.io/library/rust:1.95-bookworm AS builder
ARG TARGETARCH
WORKDIR /src
RUN set -eux; \
    arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH '$arch' (amd64 or arm64)" >&2; exit 1 ;; \
    esac; \
    echo "$target" > /rust-target; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools; \
    rm -rf /var/lib/apt/lists/*; \
    rustup target add "$target"

# Dependencies first, in a layer of their own: it is rebuilt only when a manifest or the lock file changes. The
# workspace's crates are stubs here (standins is only a dev-dependency: its stub is all the build ever needs).
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY standins/Cargo.toml standins/Cargo.toml
RUN set -eux; \
    mkdir -p src standins/src; \
    echo 'fn main() {}' > src/main.rs; \
    touch src/lib.rs standins/src/lib.rs; \
    cargo build --release --locked --target "$(cat /rust-target)" --bin rancher-ecr-credentials; \
    rm -rf src

# Then the daemon itself. COPY keeps the context's modification times, which may be older than the stubs': touch
# the crate roots so cargo rebuilds them.
COPY src src
RUN set -eux; \
    target="$(cat /rust-target)"; \
    touch src/main.rs src/lib.rs; \
    cargo build --release --locked --target "$target" --bin rancher-ecr-credentials; \
    mkdir -p /out; \
    cp "target/$target/release/rancher-ecr-credentials" /out/rancher-ecr-credentials; \
    cp /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt; \
    /out/rancher-ecr-credentials --version

# ---------------------------------------------------------------------------------------------------------------------
# host: a binary built on the host (scripts/build-image) and a CA bundle, both from the build context.
FROM scratch AS host
ARG HOST_BINARY=target/x86_64-unknown-linux-musl/release/rancher-ecr-credentials
ARG HOST_CA_BUNDLE=target/image/ca-certificates.crt
COPY ${HOST_BINARY} /out/rancher-ecr-credentials
COPY ${HOST_CA_BUNDLE} /out/ca-certificates.crt

# ---------------------------------------------------------------------------------------------------------------------
FROM ${BINARY_SOURCE} AS binary

FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.source="https://github.com/rancher-ecr-credentials/rancher-ecr-credentials" \
      org.opencontainers.image.title="rancher-ecr-credentials" \
      org.opencontainers.image.description="Keeps Amazon ECR pull credentials fresh inside Rancher 1.x (Cattle) and 2.x" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY scripts/image/passwd /etc/passwd
COPY scripts/image/group /etc/group
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binary /out/rancher-ecr-credentials /rancher-ecr-credentials
USER 65532:65532
ENV LISTEN_PORT=8080 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 CMD ["/rancher-ecr-credentials", "healthcheck"]
ENTRYPOINT ["/rancher-ecr-credentials"]
