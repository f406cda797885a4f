#include "symbols/go_binary.h"

#include <sys/stat.h>

#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <tuple>

namespace goroscope {

bool GoBinary::has_dwarf() const { return elf_->section(".debug_info") || elf_->section(".zdebug_info"); }

Result<std::shared_ptr<const GoBinary>> GoBinary::open(const std::string& path) {
  auto elf = ElfImage::open(path);
  if (!elf) return elf.error();
  std::shared_ptr<GoBinary> b(new GoBinary());
  b->elf_ = std::move(elf.value());

  auto bi = read_build_info(*b->elf_);
  if (!bi) return bi.error();
  b->build_info_ = std::move(bi.value());

  auto pcln = Pclntab::load(*b->elf_, b->build_info_.go_version);
  if (!pcln) return pcln.error();
  b->pclntab_ = std::move(pcln.value());

  const GoVersion& v = b->build_info_.go_version;
  auto dwarf = read_dwarf_offsets(*b->elf_, v);
  auto table = table_offsets(v);
  if (dwarf) {
    b->offsets_ = std::move(dwarf.value());
  } else if (table) {
    b->warnings_.push_back("no DWARF (" + dwarf.error().message + "): struct offsets come from the " +
                           v.minor_key() + " table");
  } else {
    b->warnings_.push_back("no struct offsets: " + dwarf.error().message + ", and " + table.error().message);
  }
  // DWARF describes only the types the program uses (time.Timer is absent
  // from a program without timers); the table fills those gaps, marked as such.
  for (const auto& spec : required_fields()) {
    if (!spec.exists_in(v.minor) || b->offsets_.get(spec.key())) continue;
    if (auto t = table ? table->get(spec.key()) : std::nullopt) {
      b->offsets_.set(spec.key(), *t);
    } else {
      b->warnings_.push_back("struct offset " + spec.key() + " is unknown for this binary");
    }
  }

  auto wr = read_wait_reasons(*b->elf_);
  if (wr) {
    b->wait_reasons_ = std::move(wr.value());
  } else {
    auto table = table_wait_reasons(v);
    if (table) {
      b->wait_reasons_ = std::move(table.value());
    } else {
      b->warnings_.push_back("wait reasons unknown: " + table.error().message);
    }
  }
  return std::shared_ptr<const GoBinary>(std::move(b));
}

Result<std::shared_ptr<const GoBinary>> GoBinary::open_cached(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return open(path);  // open() reports the error
  using Key = std::tuple<dev_t, ino_t, off_t, int64_t>;
  using Opened = Result<std::shared_ptr<const GoBinary>>;
  // An entry is in the cache from the moment its open starts: a daemon that
  // finds 50 processes of one program attaches to them at once, and when
  // each worker parsed the binary itself, each kept its own copy (50
  // mappings of the file and 50 sets of tables: ~1.4 MiB of resident
  // mapping and ~0.6 MiB of heap each, measured with
  // tests/bench/scrape_bench.sh), besides parsing it 50 times.
  static std::mutex mu;
  static std::map<Key, std::shared_future<Opened>> cache;
  Key key{st.st_dev, st.st_ino, st.st_size, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  std::promise<Opened> opening;
  {
    std::unique_lock lock(mu);
    if (auto it = cache.find(key); it != cache.end()) {
      std::shared_future<Opened> pending = it->second;
      lock.unlock();
      return pending.get();  // a failed open is the same failure here
    }
    // Binaries no session holds any more are dropped, so a long-running daemon
    // does not keep every deployed version of a program in memory.
    std::erase_if(cache, [](const auto& entry) {
      const auto& f = entry.second;
      return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready && f.get() &&
             f.get().value().use_count() == 1;
    });
    cache.emplace(key, opening.get_future().share());
  }
  Opened b = open(path);
  opening.set_value(b);
  if (!b) {
    std::lock_guard lock(mu);
    cache.erase(key);  // not cached: the next attempt tries again
  }
  return b;
}

}  // namespace goroscope
