# Conveyor: one image for every role (ingress, worker, store).
# Build: docker build -t conveyor .
# ---- build stage
FROM swift:6.1-bookworm AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pkg-config libopenblas-dev libturbojpeg0-dev libhdf5-dev libmosquitto-dev libsqlite3-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift openapi.yaml ./
COPY Sources ./Sources
COPY Tests ./Tests
COPY Fuzz ./Fuzz
RUN swift build -c release --product conveyor --static-swift-stdlib \
    && install -D .build/release/conveyor /out/conveyor

# ---- runtime stage: the shared libraries the binary links, and curl for
# compose.yaml's health check of the ingress (GET /health)
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopenblas0-pthread libturbojpeg0 libhdf5-103-1 libmosquitto1 libsqlite3-0 zlib1g ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 conveyor
COPY --from=build /out/conveyor /usr/local/bin/conveyor
USER conveyor
WORKDIR /home/conveyor
# Models are mounted at /models (see compose.yaml); CONVEYOR_MODEL points at one.
ENV CONVEYOR_MODEL=/models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5 \
    CONVEYOR_BROKER=mqtt://mosquitto:1883
ENTRYPOINT ["conveyor"]
CMD ["--help"]
