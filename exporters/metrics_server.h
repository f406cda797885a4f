// MetricsServer: the daemon's HTTP face, in the Prometheus exporter
// convention. prometheus-cpp's pull Exposer (civetweb inside) serves the
// telemetry path from a Collectable that builds its families at scrape time;
// civetweb's begin_request hook serves the rest:
//   /            a landing page linking to the metrics
//   /-/healthy   200 while the process serves
//   /-/ready     200 once the initial targets were attempted, else 503
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "symbols/result.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace goroscope {

// goroscope's default port (listed nowhere else on a typical node; an
// exporter convention is one fixed, documented port per exporter).
constexpr int kDefaultMetricsPort = 9925;

struct MetricsServerOptions {
  std::string listen_address = ":" + std::to_string(kDefaultMetricsPort);  // [host]:port; port 0: any free port
  std::string telemetry_path = "/metrics";
  // civetweb serves each connection on one of a fixed pool of workers, and
  // a client that never finishes its request (or never reads the answer)
  // holds its worker until request_timeout_ms (10 s). With 4 workers, 4
  // such clients stalled every scrape by 10 s, 8 by 20 s; workers are cheap
  // (a thread and a 16 KiB buffer each), stalled scrapes are not.
  int threads = 32;
};

// "host:port" / ":port" / "[v6]:port" -> civetweb's listening_ports value,
// or an error naming what is wrong.
Result<std::string> civetweb_listening_port(const std::string& listen_address);

class MetricsServer {
 public:
  // Fails with one line when the address is malformed or the port is in use.
  static Result<std::unique_ptr<MetricsServer>> start(const MetricsServerOptions& options,
                                                      std::shared_ptr<prometheus::Collectable> collectable,
                                                      std::function<bool()> ready);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Collectable> collectable_;
  std::function<bool()> ready_;
  std::string telemetry_path_;
  int port_ = 0;
  friend struct MetricsServerRequests;
};

}  // namespace goroscope
