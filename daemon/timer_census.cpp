#include "daemon/timer_census.h"
#include "symbols/machine_code.h"


#include <cstring>
#include <set>

#include "daemon/process_memory.h"

namespace goroscope {

namespace {

struct SliceHeader {
  uint64_t ptr, len, cap;
};
constexpr uint64_t kMaxProcs = 1 << 14;  // GOMAXPROCS bound for validation
constexpr uint64_t kMaxHeap = 16 << 20;  // timers per P we are willing to read

}  // namespace

Result<std::unique_ptr<TimerCensus>> TimerCensus::open(pid_t pid, std::shared_ptr<const GoBinary> binary,
                                                       uint64_t load_bias) {
  std::unique_ptr<TimerCensus> c(new TimerCensus());
  c->pid_ = pid;
  c->binary_ = binary;
  c->bias_ = load_bias;
  c->v2_ = binary->go_version().at_least(1, 23);
  const StructOffsets& o = binary->offsets();
  std::vector<std::pair<const char*, uint64_t*>> need = {
      {"runtime.p.timers", &c->p_timers_},     {"runtime.p.id", &c->p_id_},
      {"runtime.timer.when", &c->timer_when_}, {"runtime.timer.period", &c->timer_period_},
      {"runtime.timer.f", &c->timer_f_},       {"runtime.timer", &c->timer_size_}};
  if (c->v2_) {
    need.push_back({"runtime.timers.heap", &c->heap_off_});
    need.push_back({"runtime.timer.state", &c->status_off_});
    need.push_back({"runtime.timeTimer.timer", &c->key_adjust_});
    need.push_back({"runtime.timerWhen", &c->tw_size_});
    need.push_back({"runtime.timerWhen.timer", &c->tw_timer_});
  } else {
    need.push_back({"runtime.timer.status", &c->status_off_});
  }
  for (auto& [key, dest] : need) {
    auto v = o.get(key);
    if (!v) return Error{ErrorKind::NotFound, std::string("timer census unavailable: ") + key + " offset unknown"};
    *dest = v->value;
  }

  ProcessMemory mem(pid);
  auto valid_allp = [&](uint64_t candidate) {
    auto h = mem.read_value<SliceHeader>(candidate + load_bias);
    if (!h || !h->ptr || !h->len || h->len > h->cap || h->cap > kMaxProcs) return false;
    std::vector<uint64_t> ps(h->len);
    if (!mem.read(h->ptr, ps.data(), ps.size() * 8)) return false;
    for (uint64_t i = 0; i < ps.size(); i++) {
      if (!ps[i]) return false;
      auto id = mem.read_value<int32_t>(ps[i] + c->p_id_);
      if (!id || uint64_t(*id) != i) return false;
    }
    return true;
  };
  if (auto sym = binary->elf().symbol("runtime.allp")) {
    c->allp_ = sym->value;
    return c;
  }
  // Stripped: functions that range over allp in every version 1.19-1.26.
  // A slice header is an operand whose +8 (len) is one too; it is allp if
  // the live process agrees.
  if (binary->elf().arch() == Arch::Amd64) {
    for (const char* fn : {"runtime.timeSleepUntil", "runtime.procresize", "runtime.gcstopm"}) {
      auto f = binary->pclntab().func_by_name(fn);
      if (!f) continue;
      std::vector<uint64_t> ops = rip_relative_operands(binary->elf(), *f);
      std::set<uint64_t> addresses(ops.begin(), ops.end());
      for (uint64_t candidate : addresses) {
        if (!addresses.count(candidate + 8)) continue;
        if (valid_allp(candidate)) {
          c->allp_ = candidate;
          return c;
        }
      }
    }
  }
  return Error{ErrorKind::NotFound, "timer census unavailable: runtime.allp not found (stripped binary)"};
}

Result<std::vector<PendingTimer>> TimerCensus::snapshot(const TimerTracker& classifier) const {
  ProcessMemory mem(pid_);
  auto h = mem.read_value<SliceHeader>(allp_ + bias_);
  if (!h) return h.error();
  if (!h->ptr || !h->len || h->len > kMaxProcs) return std::vector<PendingTimer>{};
  std::vector<uint64_t> ps(h->len);
  if (auto r = mem.read(h->ptr, ps.data(), ps.size() * 8); !r) return r.error();

  // The timer pointers of every P's heap.
  std::vector<uint64_t> timers;
  for (uint64_t p : ps) {
    if (!p) continue;
    auto heap = mem.read_value<SliceHeader>(p + p_timers_ + (v2_ ? heap_off_ : 0));
    if (!heap || !heap->ptr || !heap->len || heap->len > heap->cap || heap->len > kMaxHeap) continue;
    if (!v2_) {
      std::vector<uint64_t> v(heap->len);
      if (!mem.read(heap->ptr, v.data(), v.size() * 8)) continue;
      timers.insert(timers.end(), v.begin(), v.end());
    } else {
      std::vector<uint8_t> raw(heap->len * tw_size_);
      if (!mem.read(heap->ptr, raw.data(), raw.size())) continue;
      for (uint64_t i = 0; i < heap->len; i++) {
        uint64_t t;
        std::memcpy(&t, raw.data() + i * tw_size_ + tw_timer_, 8);
        timers.push_back(t);
      }
    }
  }

  // Each timer's fields, in batches; a timer freed under us fails alone.
  std::vector<uint8_t> buf(timers.size() * timer_size_);
  std::vector<RemoteRead> reads;
  for (size_t i = 0; i < timers.size(); i++)
    if (timers[i]) reads.push_back({timers[i], timer_size_, buf.data() + i * timer_size_});
  std::vector<uint8_t> filled;
  if (auto r = mem.read_batch(reads, filled); !r) return r.error();

  std::vector<PendingTimer> out;
  size_t ri = 0;
  for (size_t i = 0; i < timers.size(); i++) {
    if (!timers[i]) continue;
    bool ok = filled[ri++];
    if (!ok) continue;
    const uint8_t* t = buf.data() + i * timer_size_;
    auto u64 = [&](uint64_t off) {
      uint64_t v = 0;
      if (off + 8 <= timer_size_) std::memcpy(&v, t + off, 8);
      return v;
    };
    if (v2_) {
      if (t[status_off_] & 4) continue;  // timerZombie: removed lazily, no longer pending
    } else {
      uint32_t status;
      std::memcpy(&status, t + status_off_, 4);
      if (status >= 3 && status <= 5) continue;  // timerDeleted, timerRemoving, timerRemoved
    }
    uint64_t fv = u64(timer_f_);
    if (!fv) continue;
    auto fn = mem.read_value<uint64_t>(fv);
    if (!fn) continue;
    PendingTimer p;
    p.when = int64_t(u64(timer_when_));
    p.period = int64_t(u64(timer_period_));
    p.kind = classifier.classify(*fn, p.period);
    if (p.kind == TimerKind::Unknown) continue;  // time.Sleep, netpoll: not a time.Timer
    p.key = timers[i] - (v2_ ? key_adjust_ : 0);
    out.push_back(p);
  }
  return out;
}

}  // namespace goroscope
