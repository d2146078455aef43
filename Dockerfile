# One image for every cerrojo program: the four services, cerrojo-migrate,
# the migrations and the client. Each container names the program it runs
# (docker-compose.yml, deploy/k8s); the default is the gateway.
#
# The runtime stage installs only deploy/runtime-packages.txt;
# `make image-check` proves that list in a clean Debian 12 root without a
# Docker engine (scripts/image-check.sh).

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends \
        build-essential cmake pkg-config ca-certificates \
        libgrpc-dev grpc-proto libprotobuf-c-dev protobuf-c-compiler \
        protobuf-compiler libprotobuf-dev \
        libpq-dev libhiredis-dev libssl-dev libsodium-dev libjansson-dev \
        libcmocka-dev libmicrohttpd-dev libutf8proc-dev libicu-dev \
        libcrack2-dev zlib1g-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The same CMake build as scripts/build.sh, limited to the shipped programs.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCERROJO_SANITIZE=OFF \
    && cmake --build /build -j "$(nproc)" --target \
        cerrojo-gateway cerrojo-auth cerrojo-kms cerrojo-session \
        cerrojo-migrate cerrojo \
    && strip --strip-debug /build/bin/cerrojo*

FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
COPY deploy/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -q \
    && grep -v '^[[:space:]]*\(#\|$\)' /tmp/runtime-packages.txt \
        | xargs apt-get install -y -q --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
    && groupadd --gid 10001 cerrojo \
    && useradd --no-create-home --uid 10001 --gid cerrojo --home-dir /var/lib/cerrojo \
        --shell /usr/sbin/nologin cerrojo \
    && install -d -o cerrojo -g cerrojo -m 0700 /var/lib/cerrojo
COPY --from=build /build/bin/cerrojo-gateway /build/bin/cerrojo-auth \
    /build/bin/cerrojo-kms /build/bin/cerrojo-session \
    /build/bin/cerrojo-migrate /build/bin/cerrojo /usr/local/bin/
COPY migrations /usr/local/share/cerrojo/migrations
COPY docs/api/openapi.json /usr/local/share/cerrojo/openapi.json
# Listen on every interface inside the container; the healthcheck
# subcommands rewrite 0.0.0.0 to loopback.
ENV CERROJO_MIGRATE_DIR=/usr/local/share/cerrojo/migrations \
    CERROJO_GATEWAY_OPENAPI_FILE=/usr/local/share/cerrojo/openapi.json \
    CERROJO_KMS_VAR_DIR=/var/lib/cerrojo \
    CERROJO_GATEWAY_HOST=0.0.0.0 \
    CERROJO_KMS_LISTEN=0.0.0.0:50052 \
    CERROJO_SESSION_LISTEN=0.0.0.0:50053 \
    CERROJO_AUTH_LISTEN=0.0.0.0:50051
USER 10001:10001
WORKDIR /var/lib/cerrojo
EXPOSE 8080 9090 50051 50052 50053 9091 9092 9093
CMD ["cerrojo-gateway"]
