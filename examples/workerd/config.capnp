# workerd config: the producer worker, the streaming tail worker that forwards its
# events to stwbridge, and a local echo service for the producer's subrequests.
#
#   workerd serve config.capnp --experimental
#
# Listens on 127.0.0.1:8080; stwbridge is expected at 127.0.0.1:4318 (its
# --http-listen). The end-to-end test (internal/e2e) rewrites both addresses.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .producer),
    (name = "echo", worker = .echo),
    (name = "stwtail", worker = .tail),
    (name = "stwbridge", external = (address = "127.0.0.1:4318", http = ())),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8080", http = (), service = "main"),
  ],
  # Streaming tail workers are still behind an autogate in workerd releases.
  autogates = ["workerd-autogate-streaming-tail-worker"],
);

const producer :Workerd.Worker = (
  modules = [(name = "main", esModule = embed "producer.js")],
  compatibilityDate = "2025-09-01",
  compatibilityFlags = ["nodejs_compat", "experimental"],
  bindings = [(name = "ECHO", service = "echo")],
  # Every invocation of this worker streams its events to the tail worker.
  streamingTails = ["stwtail"],
);

const echo :Workerd.Worker = (
  modules = [(name = "echo", esModule = embed "echo.js")],
  compatibilityDate = "2025-09-01",
  compatibilityFlags = ["nodejs_compat", "experimental"],
);

const tail :Workerd.Worker = (
  modules = [(name = "tail", esModule = embed "tail.js")],
  compatibilityDate = "2025-09-01",
  compatibilityFlags = ["nodejs_compat", "experimental"],
  bindings = [
    (name = "STWBRIDGE", service = "stwbridge"),
    (name = "STWBRIDGE_URL", text = "http://stwbridge/v1/stw"),
  ],
);
