# Builds the flux-commit-tracker image: a static binary on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd cmd
COPY internal internal
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /flux-commit-tracker ./cmd/flux-commit-tracker

FROM gcr.io/distroless/static:nonroot
COPY --from=build /flux-commit-tracker /flux-commit-tracker
USER 65532:65532
ENTRYPOINT ["/flux-commit-tracker"]
