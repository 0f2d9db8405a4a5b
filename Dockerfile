# Multi-stage build of stwbridge's binaries: static (CGO off), non-root, distroless.
#   docker build --target stwbridge -t stwbridge .
#   docker build --target stwdemo   -t stwdemo .
# Base images are pinned by digest (the tag beside it says what it was), so a rebuild
# of an old commit gets the same bases. To update: crane digest IMAGE:TAG.
#   golang:1.26-bookworm: Go 1.26.7, index digest of 2026-08 (docker-library/repo-info).
#   distroless static-debian12:nonroot: digest of 2026-08-26.
FROM golang:1.26-bookworm@sha256:38f30937ff0751bd8c202e53556168b9093302ee6d591e7e65a9d1b84a9d360c AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stwbridge ./cmd/stwbridge \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stwdemo ./cmd/stwdemo

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab AS stwbridge
COPY --from=build /out/stwbridge /stwbridge
USER nonroot:nonroot
EXPOSE 4317 4318
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/stwbridge", "health"]
ENTRYPOINT ["/stwbridge"]

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab AS stwdemo
COPY --from=build /out/stwdemo /stwdemo
USER nonroot:nonroot
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/stwdemo", "healthcheck"]
ENTRYPOINT ["/stwdemo"]
