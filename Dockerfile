# Multi-stage build of stwbridge's binaries: static (CGO off), non-root, distroless.
#   docker build --target stwbridge -t stwbridge .
#   docker build --target stwdemo   -t stwdemo .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stwbridge ./cmd/stwbridge \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stwdemo ./cmd/stwdemo

FROM gcr.io/distroless/static-debian12:nonroot AS stwbridge
COPY --from=build /out/stwbridge /stwbridge
USER nonroot:nonroot
EXPOSE 4317 4318
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/stwbridge", "health"]
ENTRYPOINT ["/stwbridge"]

FROM gcr.io/distroless/static-debian12:nonroot AS stwdemo
COPY --from=build /out/stwdemo /stwdemo
USER nonroot:nonroot
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/stwdemo", "healthcheck"]
ENTRYPOINT ["/stwdemo"]
