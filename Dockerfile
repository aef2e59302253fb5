# Builds the one `ultra` binary; every service in docker-compose.yml runs it with another subcommand.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --bins \
    && cp target/release/ultra /usr/local/bin/ultra

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 ultra
COPY --from=build /usr/local/bin/ultra /usr/local/bin/ultra
USER ultra
ENV ULTRA_API_ADDR=0.0.0.0:8080 ULTRA_SANDBOX_ADDR=0.0.0.0:8090 ULTRA_LOG_FORMAT=json
EXPOSE 8080 8090
ENTRYPOINT ["ultra"]
CMD ["api"]
