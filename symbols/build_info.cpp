#include "symbols/build_info.h"

#include <elf.h>

#include <cctype>
#include <cstring>
#include <optional>
#include <sstream>

namespace goroscope {

namespace {

constexpr char kMagic[] = "\xff Go buildinf:";
constexpr size_t kMagicLen = 14;
constexpr size_t kHeaderLen = 32;
// modinfo is framed by two 16-byte sentinels (cmd/go/internal/modload).
constexpr size_t kSentinelLen = 16;

bool parse_int(std::string_view& s, int& out) {
  size_t i = 0;
  int v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i < 6) v = v * 10 + (s[i++] - '0');
  if (i == 0) return false;
  out = v;
  s.remove_prefix(i);
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); i++) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// The subset of strconv.Unquote that build settings use: \\ \" \n \t \xNN.
std::string unquote_go(const std::string& q) {
  std::string out;
  for (size_t i = 1; i + 1 < q.size(); i++) {
    if (q[i] != '\\' || i + 2 >= q.size()) {
      out += q[i];
      continue;
    }
    char c = q[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'x':
        if (i + 2 < q.size() && isxdigit(static_cast<unsigned char>(q[i + 1])) &&
            isxdigit(static_cast<unsigned char>(q[i + 2]))) {
          auto nibble = [](char h) { return h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10; };
          out += static_cast<char>(nibble(q[i + 1]) << 4 | nibble(q[i + 2]));
          i += 2;
        }
        break;
      default: out += c;
    }
  }
  return out;
}

GoModule parse_module(const std::vector<std::string_view>& f) {
  GoModule m;
  if (f.size() > 1) m.path = f[1];
  if (f.size() > 2) m.version = f[2];
  if (f.size() > 3) m.sum = f[3];
  return m;
}

// Finds the 32-byte header: by section first, then by a 16-byte-aligned scan
// of the writable PT_LOAD segments (binaries without section headers).
std::optional<ByteReader> find_header(const ElfImage& elf) {
  if (const ElfSection* s = elf.section(".go.buildinfo")) {
    ByteReader r = elf.section_bytes(*s);
    if (r.has(0, kHeaderLen) && std::memcmp(r.bytes().data(), kMagic, kMagicLen) == 0) return r;
  }
  for (const auto& seg : elf.segments()) {
    if (seg.type != PT_LOAD || !(seg.flags & PF_W)) continue;
    auto r = elf.read_vaddr(seg.vaddr, seg.filesz, elf.path() + ": data segment");
    if (!r) continue;
    const uint8_t* p = r->bytes().data();
    for (uint64_t off = 0; off + kHeaderLen <= r->size(); off += 16) {
      if (std::memcmp(p + off, kMagic, kMagicLen) == 0) return r->from(off, elf.path() + ":.go.buildinfo");
    }
  }
  return std::nullopt;
}

// Pre-1.18 layout: pointers to Go string headers. Only read to say which old
// version the binary has.
std::string read_pointer_version(const ElfImage& elf, const ByteReader& hdr, unsigned ptr) {
  uint64_t vers_ptr = hdr.word(16, ptr);
  auto sh = elf.read_vaddr(vers_ptr, 2 * ptr, "version string header");
  if (!sh) return "";
  uint64_t data = sh->word(0, ptr), len = sh->word(ptr, ptr);
  if (len > 128) return "";
  auto s = elf.read_vaddr(data, len, "version string");
  return s ? std::string(s->str(0, len)) : "";
}

}  // namespace

std::optional<GoVersion> GoVersion::parse(std::string_view raw) {
  GoVersion v;
  v.raw = raw;
  std::string_view s = raw;
  if (s.substr(0, 6) == "devel ") {
    s.remove_prefix(6);
  }
  if (s.substr(0, 2) != "go") return std::nullopt;
  s.remove_prefix(2);
  if (!parse_int(s, v.major)) return std::nullopt;
  if (s.empty() || s[0] != '.') return std::nullopt;
  s.remove_prefix(1);
  if (!parse_int(s, v.minor)) return std::nullopt;
  if (!s.empty() && s[0] == '.') {
    s.remove_prefix(1);
    if (!parse_int(s, v.patch)) return std::nullopt;
  }
  // Whatever follows (rc1, beta2, -abcdef, " X:boringcrypto") is kept in raw.
  return v;
}

std::string BuildInfo::setting(const std::string& key) const {
  for (const auto& [k, v] : settings)
    if (k == key) return v;
  return {};
}

std::string BuildInfo::default_godebug(const std::string& key) const {
  const std::string godebug = setting("DefaultGODEBUG");  // the views below point into it
  for (auto kv : split(godebug, ',')) {
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == key) return std::string(kv.substr(eq + 1));
  }
  return {};
}

Result<BuildInfo> read_build_info(const ElfImage& elf) {
  try {
    auto hdr = find_header(elf);
    if (!hdr) return Error{ErrorKind::NotGo, elf.path() + ": not a Go binary (no Go build info)"};
    unsigned ptr = hdr->u8(kMagicLen);
    uint8_t flags = hdr->u8(kMagicLen + 1);
    if (ptr != 4 && ptr != 8) return Error{ErrorKind::Corrupt, elf.path() + ": Go build info has pointer size " + std::to_string(ptr)};
    if (flags & 1) return Error{ErrorKind::UnsupportedArch, elf.path() + ": big-endian Go binary"};

    if (!(flags & 2)) {
      std::string old = read_pointer_version(elf, *hdr, ptr);
      return Error{ErrorKind::UnsupportedVersion,
                   elf.path() + ": built with " + (old.empty() ? "a Go release before 1.18" : old) +
                       "; goroscope supports go1." + std::to_string(kMinGoMinor) + " to go1." + std::to_string(kMaxGoMinor)};
    }

    uint64_t off = kHeaderLen;
    uint64_t vlen = hdr->uvarint(off);
    std::string version(hdr->str(off, vlen));
    off += vlen;
    uint64_t mlen = hdr->uvarint(off);
    std::string_view mod = hdr->str(off, mlen);
    if (mod.size() >= 2 * kSentinelLen + 1 && mod[mod.size() - kSentinelLen - 1] == '\n') {
      mod = mod.substr(kSentinelLen, mod.size() - 2 * kSentinelLen);
    }

    BuildInfo bi;
    auto gv = GoVersion::parse(version);
    if (!gv) return Error{ErrorKind::Corrupt, elf.path() + ": unreadable Go version '" + version + "'"};
    bi.go_version = *gv;
    if (gv->major != 1 || gv->minor < kMinGoMinor || gv->minor > kMaxGoMinor) {
      return Error{ErrorKind::UnsupportedVersion, elf.path() + ": built with " + version + "; goroscope supports go1." +
                                                      std::to_string(kMinGoMinor) + " to go1." + std::to_string(kMaxGoMinor)};
    }
    bi.modinfo = mod;
    for (auto line : split(mod, '\n')) {
      if (line.empty()) continue;
      auto f = split(line, '\t');
      if (f[0] == "path" && f.size() > 1) {
        bi.main_path = f[1];
      } else if (f[0] == "mod") {
        bi.main_module = parse_module(f);
      } else if (f[0] == "dep") {
        bi.deps.push_back(parse_module(f));
      } else if (f[0] == "=>" && !bi.deps.empty()) {
        std::string r;
        for (size_t i = 1; i < f.size(); i++) r += (i > 1 ? " " : "") + std::string(f[i]);
        bi.deps.back().replaced_by = r;
      } else if (f[0] == "build" && f.size() > 1) {
        std::string_view kv = line.substr(6);
        auto eq = kv.find('=');
        std::string key(kv.substr(0, eq)), val(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
        // Values with spaces or quotes are written with strconv.Quote.
        if (val.size() >= 2 && val.front() == '"' && val.back() == '"') val = unquote_go(val);
        bi.settings.emplace_back(std::move(key), std::move(val));
      }
    }
    return bi;
  } catch (const ParseError& e) {
    return e.error();
  }
}

}  // namespace goroscope
