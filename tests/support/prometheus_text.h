// A reader of the Prometheus text exposition format (0.0.4), written from
// the format's description rather than from any client library, so tests
// check what a scraper parses, not what the serializer meant. Strict: an
// unescaped newline or quote in a label value, a bad escape or a sample
// without a value is an error (std::runtime_error naming the line).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace goroscope::testing {

struct PromSample {
  std::string name;                           // as written: a histogram's series end in _bucket, _sum, _count
  std::map<std::string, std::string> labels;  // values unescaped
  double value = 0;
};

struct PromExposition {
  std::vector<PromSample> samples;
  std::map<std::string, std::string> help;  // family -> text
  std::map<std::string, std::string> type;  // family -> counter, gauge, histogram, ...

  // Samples of `name` whose labels include every pair of `match`.
  std::vector<PromSample> find(const std::string& name, const std::map<std::string, std::string>& match = {}) const;
  // The value of the one sample that matches; throws if none or several.
  double value(const std::string& name, const std::map<std::string, std::string>& match = {}) const;
};

PromExposition parse_prometheus_text(const std::string& text);

}  // namespace goroscope::testing
