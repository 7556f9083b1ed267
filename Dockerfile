# Builds the flux-commit-tracker image: a static binary on a distroless base, run as a non-root user.
# docker buildx build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) \
#   --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t ghcr.io/flux-commit-tracker/flux-commit-tracker:v0.1.0 .
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=""
ARG DATE=""
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd cmd
COPY internal internal
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
    -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
    -o /flux-commit-tracker ./cmd/flux-commit-tracker

FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
ARG COMMIT=""
ARG DATE=""
LABEL org.opencontainers.image.title="flux-commit-tracker" \
      org.opencontainers.image.description="Records how long each commit takes from commit to applied by Flux" \
      org.opencontainers.image.source="https://github.com/flux-commit-tracker/flux-commit-tracker" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}"
COPY --from=build /flux-commit-tracker /flux-commit-tracker
USER 65532:65532
ENTRYPOINT ["/flux-commit-tracker"]
