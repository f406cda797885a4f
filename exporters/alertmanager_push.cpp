#include "exporters/alertmanager_push.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace goroscope {

namespace {

using Clock = std::chrono::steady_clock;
using WallClock = std::chrono::system_clock;
using LabelSet = std::map<std::string, std::string>;
using std::chrono::milliseconds;

// An active alert is sent valid for this many re-send intervals: it survives
// a few failed or late pushes without flapping to resolved, and still
// expires soon after the daemon is gone.
constexpr int kValidResends = 4;
// Resolutions waiting for an unreachable Alertmanager are kept per distinct
// label set; past this many (a long outage with many short-lived PIDs) the
// excess is given up, first in label order: each such alert still expires at
// the endsAt it was last sent with.
constexpr size_t kMaxPendingResolved = 4096;
// The sender wakes at least this often even with nothing due, so a missed
// wake-up can delay it by no more than this.
constexpr milliseconds kMaxSleep{1000};

struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// libcurl's global state must be set up before any handle, once per process.
void init_curl_once() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) throw std::runtime_error(std::string("libcurl: ") + curl_easy_strerror(rc));
}

std::string rfc3339(WallClock::time_point t) {
  auto ms = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

// The v2 endpoint of an Alertmanager given by its base URL.
std::string alerts_endpoint(const std::string& url) {
  std::string lower = url;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.rfind("http://", 0) != 0 && lower.rfind("https://", 0) != 0)
    throw std::invalid_argument("--alertmanager.url " + url + ": must start with http:// or https://");
  std::string base = url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string path = "/api/v2/alerts";
  if (base.size() >= path.size() && base.compare(base.size() - path.size(), path.size(), path) == 0) return base;
  return base + path;
}

std::string seconds_text(milliseconds d) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(d.count()) / 1000);
  return buf;
}

size_t keep_response(char* data, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  // Only for the error message: the start of the body is enough.
  if (s->size() < 512) s->append(data, std::min(size * n, 512 - s->size()));
  return size * n;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

struct AlertmanagerPush::Worker {
  struct Firing {
    Alert alert;
    WallClock::time_point starts_at;
  };
  struct Resolved {
    Alert alert;
    WallClock::time_point starts_at, ends_at;
  };
  // What the log says about an Alertmanager; a line is written on each change.
  enum class Health { Unknown, Delivering, Failing, Refusing };

  struct Target {
    size_t index = 0;  // into status_
    std::string url, endpoint;
    std::unique_ptr<CURL, CurlEasyDeleter> easy;
    char error[CURL_ERROR_SIZE] = {};
    std::string body, response;  // of the request in flight
    bool in_flight = false;
    size_t in_flight_alerts = 0;
    std::vector<std::pair<LabelSet, WallClock::time_point>> in_flight_resolved;
    bool changed = false;  // the active set changed since the last request started
    Clock::time_point next_attempt{};
    RetryBackoff backoff;
    Health health = Health::Unknown;
    Clock::time_point failing_since{};
    std::map<LabelSet, Resolved> resolved;  // not yet delivered here

    explicit Target(BackoffPolicy policy) : backoff(policy) {}
  };

  AlertmanagerPush& owner;
  // Declared first so it is destroyed last, after every easy handle.
  std::unique_ptr<CURLM, CurlMultiDeleter> multi;
  std::unique_ptr<curl_slist, CurlSlistDeleter> headers;
  std::vector<std::unique_ptr<Target>> targets;
  std::map<LabelSet, Firing> active;

  explicit Worker(AlertmanagerPush& o) : owner(o) {
    const auto& opt = owner.options_;
    multi.reset(curl_multi_init());
    if (!multi) throw std::runtime_error("libcurl: cannot create a multi handle");
    curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
    // Without this libcurl may wait up to a second for "100 Continue" before
    // sending a large body.
    if (h) h = curl_slist_append(h, "Expect:");
    if (!h) throw std::runtime_error("libcurl: out of memory");
    headers.reset(h);
    for (size_t i = 0; i < opt.urls.size(); i++) {
      auto t = std::make_unique<Target>(opt.backoff);
      t->index = i;
      t->url = opt.urls[i];
      t->endpoint = alerts_endpoint(opt.urls[i]);
      t->easy.reset(curl_easy_init());
      if (!t->easy) throw std::runtime_error("libcurl: cannot create a handle");
      CURL* e = t->easy.get();
      curl_easy_setopt(e, CURLOPT_URL, t->endpoint.c_str());
      curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
      curl_easy_setopt(e, CURLOPT_USERAGENT, "goroscope/" GOROSCOPE_VERSION);
      curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt.connect_timeout.count()));
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(opt.request_timeout.count()));
      // Timeouts must not use SIGALRM: this is one thread of a daemon.
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_response);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->response);
      curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
      targets.push_back(std::move(t));
    }
  }

  ~Worker() {
    for (auto& t : targets)
      if (t->in_flight) curl_multi_remove_handle(multi.get(), t->easy.get());
  }

  void log(const Target& t, const std::string& line) const {
    std::string msg = "alertmanager " + t.url + ": " + line;
    if (owner.options_.log)
      owner.options_.log(msg);
    else
      std::cerr << "goroscope: " << msg << "\n";
  }

  bool has_work(const Target& t) const { return !active.empty() || !t.resolved.empty(); }

  // One evaluation's set: alerts that left it become resolutions for every
  // Alertmanager; new ones start firing. Any change is pushed at once to the
  // Alertmanagers not in back-off.
  void apply(Queued q) {
    std::map<LabelSet, Firing> next;
    bool changed = false;
    for (auto& a : q.alerts) {
      LabelSet key = a.identity();
      auto was = active.find(key);
      if (was == active.end()) {
        changed = true;
        for (auto& t : targets) t->resolved.erase(key);
        next[key] = Firing{std::move(a), q.at};
      } else {
        // Annotations (counts, reasons) follow the latest evaluation.
        next[key] = Firing{std::move(a), was->second.starts_at};
      }
    }
    for (auto& [key, f] : active) {
      if (next.count(key)) continue;
      changed = true;
      for (auto& t : targets) {
        t->resolved[key] = Resolved{f.alert, f.starts_at, q.at};
        while (t->resolved.size() > kMaxPendingResolved) t->resolved.erase(t->resolved.begin());
      }
    }
    active = std::move(next);
    if (!changed) return;
    for (auto& t : targets) {
      t->changed = true;
      if (t->health != Health::Failing) t->next_attempt = Clock::now();
    }
  }

  nlohmann::json encode(const Alert& a, WallClock::time_point starts, WallClock::time_point ends) const {
    nlohmann::json j = {{"labels", a.identity()},
                        {"annotations", a.annotations},
                        {"startsAt", rfc3339(starts)},
                        {"endsAt", rfc3339(ends)}};
    if (!owner.options_.generator_url.empty()) j["generatorURL"] = owner.options_.generator_url;
    return j;
  }

  void start(Target& t) {
    auto now = WallClock::now();
    auto valid_until = now + kValidResends * owner.options_.resend_interval;
    nlohmann::json alerts = nlohmann::json::array();
    for (const auto& [key, f] : active) alerts.push_back(encode(f.alert, f.starts_at, valid_until));
    t.in_flight_resolved.clear();
    for (const auto& [key, r] : t.resolved) {
      alerts.push_back(encode(r.alert, r.starts_at, r.ends_at));
      t.in_flight_resolved.emplace_back(key, r.ends_at);
    }
    // Paths and names read from a target need not be UTF-8; a bad byte must
    // not cost the whole push.
    t.body = alerts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    t.in_flight_alerts = alerts.size();
    t.response.clear();
    t.error[0] = '\0';
    t.changed = false;
    curl_easy_setopt(t.easy.get(), CURLOPT_POSTFIELDS, t.body.c_str());
    curl_easy_setopt(t.easy.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.body.size()));
    if (curl_multi_add_handle(multi.get(), t.easy.get()) == CURLM_OK) {
      t.in_flight = true;
    } else {
      finish(t, CURLE_FAILED_INIT, false);
    }
  }

  // The resolutions in the request were delivered (or refused for good):
  // drop them, unless the alert resolved again meanwhile.
  void forget_sent_resolutions(Target& t) {
    for (const auto& [key, ends] : t.in_flight_resolved) {
      auto it = t.resolved.find(key);
      if (it != t.resolved.end() && it->second.ends_at == ends) t.resolved.erase(it);
    }
    t.in_flight_resolved.clear();
  }

  void finish(Target& t, CURLcode rc, bool was_added = true) {
    if (was_added) curl_multi_remove_handle(multi.get(), t.easy.get());
    t.in_flight = false;
    long http = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &http);
    const auto now = Clock::now();
    const auto& opt = owner.options_;
    std::string line;  // logged after the status lock is released
    std::unique_lock<std::mutex> lock(owner.status_mu_);
    AlertmanagerStatus& st = owner.status_[t.index];

    if (rc == CURLE_OK && http >= 200 && http < 300) {
      forget_sent_resolutions(t);
      st.alerts_sent += t.in_flight_alerts;
      if (t.health == Health::Failing) {
        auto down = std::chrono::duration_cast<milliseconds>(now - t.failing_since);
        line = "delivering alerts again, after " + std::to_string(t.backoff.consecutive_failures()) +
               " failed attempts over " + seconds_text(down);
      } else if (t.health != Health::Delivering) {
        line = "delivering alerts (" + std::to_string(t.in_flight_alerts) + " in the first push)";
      }
      t.health = Health::Delivering;
      t.backoff.reset();
      st.last_error.clear();
      t.next_attempt = t.changed ? now : now + opt.resend_interval;
    } else if (rc == CURLE_OK && http >= 300 && http < 500 && http != 429) {
      // The Alertmanager answered and refused this payload (or the URL is
      // not an Alertmanager): the same request would be refused again.
      forget_sent_resolutions(t);
      st.send_failures++;
      st.last_error = "HTTP " + std::to_string(http) + ": " + one_line(t.response);
      if (t.health != Health::Refusing) line = "refused the alerts (" + st.last_error + "); not retrying them";
      t.health = Health::Refusing;
      t.backoff.reset();
      t.next_attempt = t.changed ? now : now + opt.resend_interval;
    } else {
      // Unreachable, timed out, overloaded (5xx, 429): retry the same
      // alerts, plus whatever changed meanwhile, after a back-off.
      st.send_failures++;
      if (rc != CURLE_OK)
        st.last_error = t.error[0] ? t.error : curl_easy_strerror(rc);
      else
        st.last_error = "HTTP " + std::to_string(http) + ": " + one_line(t.response);
      milliseconds delay = t.backoff.next_delay();
      t.next_attempt = now + delay;
      if (t.health != Health::Failing) {
        t.failing_since = now;
        line = "cannot push alerts (" + st.last_error + "); retrying with back-off from " +
               seconds_text(opt.backoff.initial) + " up to " + seconds_text(opt.backoff.max);
      }
      t.health = Health::Failing;
    }
    st.consecutive_failures = t.backoff.consecutive_failures();
    st.backing_off = t.health == Health::Failing;
    st.backoff = t.backoff.current();
    lock.unlock();
    if (!line.empty()) log(t, line);
  }

  void run() {
    while (!owner.stop_.load()) {
      std::deque<Queued> sets;
      {
        std::lock_guard<std::mutex> lock(owner.queue_mu_);
        sets.swap(owner.queue_);
      }
      for (auto& s : sets) apply(std::move(s));

      auto now = Clock::now();
      for (auto& t : targets)
        if (!t->in_flight && has_work(*t) && now >= t->next_attempt) start(*t);

      int running = 0;
      curl_multi_perform(multi.get(), &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi.get(), &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        Target* t = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &t);
        // finish() may make the target due at once (the set changed while it
        // was in flight); the next turn of the loop starts it.
        if (t) finish(*t, m->data.result);
      }

      // Sleep until the next attempt is due, a transfer needs attention
      // (libcurl shortens the wait for its own timeouts), or update() or
      // the destructor wakes us.
      milliseconds wait = kMaxSleep;
      now = Clock::now();
      for (auto& t : targets) {
        if (t->in_flight || !has_work(*t)) continue;
        auto due = std::chrono::duration_cast<milliseconds>(t->next_attempt - now);
        wait = std::min(wait, std::max(due, milliseconds(0)));
      }
      if (wait.count() > 0) curl_multi_poll(multi.get(), nullptr, 0, static_cast<int>(wait.count()), nullptr);
    }
  }
};

AlertmanagerPush::AlertmanagerPush(AlertmanagerPushOptions options) : options_(std::move(options)) {
  if (options_.urls.empty()) throw std::invalid_argument("no Alertmanager URL to push alerts to");
  if (options_.queue_capacity == 0) options_.queue_capacity = 1;
  init_curl_once();
  worker_ = std::make_unique<Worker>(*this);
  for (const auto& url : options_.urls) {
    AlertmanagerStatus st;
    st.url = url;
    status_.push_back(st);
  }
  thread_ = std::thread([this] { worker_->run(); });
}

AlertmanagerPush::~AlertmanagerPush() {
  stop_.store(true);
  curl_multi_wakeup(worker_->multi.get());
  if (thread_.joinable()) thread_.join();
}

void AlertmanagerPush::update(std::vector<Alert> active) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    while (queue_.size() >= options_.queue_capacity) {
      queue_.pop_front();
      updates_dropped_++;
    }
    queue_.push_back(Queued{std::move(active), WallClock::now()});
  }
  curl_multi_wakeup(worker_->multi.get());
}

uint64_t AlertmanagerPush::alerts_sent() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  uint64_t n = 0;
  for (const auto& s : status_) n += s.alerts_sent;
  return n;
}

uint64_t AlertmanagerPush::send_failures() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  uint64_t n = 0;
  for (const auto& s : status_) n += s.send_failures;
  return n;
}

bool AlertmanagerPush::backing_off() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return std::any_of(status_.begin(), status_.end(), [](const AlertmanagerStatus& s) { return s.backing_off; });
}

std::vector<AlertmanagerStatus> AlertmanagerPush::status() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return status_;
}

}  // namespace goroscope
