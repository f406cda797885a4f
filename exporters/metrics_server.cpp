#include "exporters/metrics_server.h"

#include <arpa/inet.h>
#include <CivetServer.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <mutex>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

namespace goroscope {

// begin_request is a plain function pointer without a context of ours, so
// live servers are found by the port the request came in on.
struct MetricsServerRequests {
  static std::mutex mu;
  static std::map<int, MetricsServer*> by_port;

  static int handle(mg_connection* conn) {
    const mg_request_info* req = mg_get_request_info(conn);
    if (!req || !req->local_uri) return 0;
    std::string uri = req->local_uri;
    std::string path;
    std::function<bool()> ready;
    {
      std::lock_guard lock(mu);
      auto it = by_port.find(req->server_port);
      if (it == by_port.end()) return 0;
      path = it->second->telemetry_path_;
      ready = it->second->ready_;
    }
    if (uri == path) return 0;  // the Exposer's handler
    if (uri == "/-/healthy") return reply(conn, 200, "text/plain", "Healthy.\n");
    if (uri == "/-/ready") {
      bool ok = !ready || ready();
      return reply(conn, ok ? 200 : 503, "text/plain", ok ? "Ready.\n" : "Not ready: attaching to the initial targets.\n");
    }
    if (uri == "/") {
      std::string page =
          "<!DOCTYPE html>\n<html><head><title>goroscope</title></head><body>\n"
          "<h1>goroscope</h1>\n<p>eBPF runtime monitor for live Go processes.</p>\n"
          "<ul><li><a href=\"" + path + "\">Metrics</a></li>\n"
          "<li><a href=\"/-/healthy\">Health</a></li>\n<li><a href=\"/-/ready\">Readiness</a></li></ul>\n"
          "</body></html>\n";
      return reply(conn, 200, "text/html; charset=utf-8", page);
    }
    return reply(conn, 404, "text/plain", "Not found. Metrics are at " + path + "\n");
  }

  static int reply(mg_connection* conn, int status, const char* type, const std::string& body) {
    const char* text = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found";
    mg_printf(conn, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
              text, type, body.size());
    mg_write(conn, body.data(), body.size());
    return status;  // nonzero: handled
  }
};
std::mutex MetricsServerRequests::mu;
std::map<int, MetricsServer*> MetricsServerRequests::by_port;

Result<std::string> civetweb_listening_port(const std::string& listen_address) {
  auto bad = [&](const std::string& why) {
    return Error{ErrorKind::NotFound, "--web.listen-address '" + listen_address + "': " + why};
  };
  size_t colon = listen_address.rfind(':');
  if (colon == std::string::npos) return bad("expected [host]:port");
  std::string host = listen_address.substr(0, colon), port = listen_address.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535)
    return bad("port must be a number 0-65535");
  if (host.empty()) return port;
  if (host.front() == '[') {
    if (host.back() != ']') return bad("unterminated IPv6 address");
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6) != 1) return bad("not an IPv6 address");
    return host + ":" + port;
  }
  if (host == "localhost") host = "127.0.0.1";
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) != 1) return bad("host must be an IP address");
  return host + ":" + port;
}

namespace {

// civetweb reports a failed bind only as a null context; binding once here
// first gives the operator the reason (in use, not an address of this host).
std::optional<std::string> bind_problem(const std::string& civet_port) {
  std::string host = "0.0.0.0", port = civet_port;
  int family = AF_INET;
  if (size_t colon = civet_port.rfind(':'); colon != std::string::npos) {
    host = civet_port.substr(0, colon);
    port = civet_port.substr(colon + 1);
    if (host.front() == '[') {
      host = host.substr(1, host.size() - 2);
      family = AF_INET6;
    }
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string(strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(uint16_t(std::stoi(port)));
    inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(std::stoi(port)));
    inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  int err = errno;
  close(fd);
  if (rc != 0) return std::string(strerror(err));
  return std::nullopt;
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const MetricsServerOptions& options,
                                                            std::shared_ptr<prometheus::Collectable> collectable,
                                                            std::function<bool()> ready) {
  auto port = civetweb_listening_port(options.listen_address);
  if (!port) return port.error();
  if (options.telemetry_path.empty() || options.telemetry_path[0] != '/' || options.telemetry_path == "/" ||
      options.telemetry_path.rfind("/-/", 0) == 0)
    return Error{ErrorKind::NotFound, "--web.telemetry-path '" + options.telemetry_path +
                                          "': must start with '/' and not be '/' or under '/-/'"};
  if (auto problem = bind_problem(*port))
    return Error{ErrorKind::Io, "cannot listen on " + options.listen_address + ": " + *problem};

  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->collectable_ = std::move(collectable);
  s->ready_ = std::move(ready);
  s->telemetry_path_ = options.telemetry_path;
  static CivetCallbacks callbacks{};
  callbacks.begin_request = &MetricsServerRequests::handle;
  // civetweb answers as soon as the Exposer is constructed; a request must
  // not find this server unregistered (a 404 for /-/healthy or /-/ready, or
  // for the metrics before the collectable is registered), so it waits in
  // handle() for this lock until the server is complete.
  std::lock_guard lock(MetricsServerRequests::mu);
  try {
    s->exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", *port, "num_threads", std::to_string(options.threads),
                                 // A client that stops reading cannot hold a worker for long.
                                 "request_timeout_ms", "10000"},
        &callbacks);
  } catch (const std::exception& e) {
    return Error{ErrorKind::Io, "cannot listen on " + options.listen_address + ": " + e.what()};
  }
  s->exposer_->RegisterCollectable(s->collectable_, options.telemetry_path);
  auto ports = s->exposer_->GetListeningPorts();
  s->port_ = ports.empty() ? 0 : ports.front();
  MetricsServerRequests::by_port[s->port_] = s.get();
  return s;
}

MetricsServer::~MetricsServer() {
  {
    std::lock_guard lock(MetricsServerRequests::mu);
    MetricsServerRequests::by_port.erase(port_);
  }
  exposer_.reset();  // stops civetweb's threads before the members they read go
}

}  // namespace goroscope
