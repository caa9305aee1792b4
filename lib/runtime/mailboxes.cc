#include "lib/runtime/mailboxes.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "lib/runtime/gloo_errors.h"

namespace polyguard::internal {
namespace {

// Message layout, in 64-bit words: kind, nonce, exchange, length (doubles)
// of this chunk, its offset in the piece, the piece's length, the chunk, then
// the trailer (nonce ^ kTrailer). A piece longer than capacity() travels as
// consecutive chunks on each connection. A receive buffer's header
// and trailer are zeroed once read, so only a message written in full since
// passes.
enum Kind : uint64_t {
  kDataMessage = 0x706700000000d474,
  kHeartbeatMessage = 0x70670000000011fe,
  kGoodbyeMessage = 0x706700000000b7e5,
};
constexpr uint64_t kTrailer = 0x5a5a00005a5a0000;
constexpr int64_t kHeaderWords = 6;
constexpr int64_t kOverheadWords = kHeaderWords + 1;

// gloo slots of the bound buffers: one range per direction (a send buffer's
// destructor unregisters the receive buffer of its slot on its pair; each
// direction has its own connection now, and the ranges stay apart anyway),
// wrapping long before int's range.
int SlotOf(bool from_lower, uint64_t sequence) {
  return int((uint64_t(1) << 30) | (from_lower ? 0 : uint64_t(1) << 29) |
             (sequence & ((uint64_t(1) << 28) - 1)));
}

}  // namespace

struct Mailboxes::Source {
  int peer = -1;
  bool from_lower = false;  // peer < this rank
  gloo::transport::Pair* pair = nullptr;
  std::vector<std::vector<uint64_t>> memory;  // kSlots buffers
  std::vector<std::unique_ptr<gloo::transport::Buffer>> buffers;
  std::thread thread;
};

struct Mailboxes::Destination {
  int peer = -1;
  bool from_lower = false;  // this rank < peer
  gloo::transport::Pair* pair = nullptr;
  uint64_t sequence = 0;
  bool failed = false;
  std::chrono::steady_clock::time_point last_sent;
};

struct Mailboxes::InFlight {
  Destination* destination = nullptr;
  std::unique_ptr<gloo::transport::Buffer> buffer;
  std::shared_ptr<std::vector<uint64_t>> memory;
};

Mailboxes::Mailboxes(Directions connections, int rank, const std::vector<int>& members,
                     const std::vector<int>& gloo_rank,
                     std::chrono::milliseconds connection_timeout)
    : connections_(std::move(connections)), rank_(rank) {
  const int64_t others = std::max<int64_t>(1, int64_t(members.size()) - 1);
  capacity_ = std::clamp<int64_t>((int64_t(16) << 20) / 8 / kSlots / others, 512, 16384);
  // Several heartbeats per timeout, and often enough that a receiver asked
  // to stop hears something soon.
  heartbeat_every_ = std::clamp(connection_timeout / 8, std::chrono::milliseconds(10),
                                std::chrono::milliseconds(250));
  const size_t words = size_t(capacity_ + kOverheadWords);
  const auto now = std::chrono::steady_clock::now();
  for (int q : members) {
    if (q == rank_) continue;
    const int g = gloo_rank[size_t(q)];
    auto d = std::make_unique<Destination>();
    d->peer = q;
    d->from_lower = rank_ < q;
    d->pair = (rank_ < q ? connections_.up : connections_.down)->getPair(g).get();
    d->last_sent = now;
    destinations_.push_back(std::move(d));
    auto s = std::make_unique<Source>();
    s->peer = q;
    s->from_lower = q < rank_;
    s->pair = (q < rank_ ? connections_.up : connections_.down)->getPair(g).get();
    // Only this peer's receiver thread uses this end (gloo's sync mode
    // holds the pair's lock while it waits for the socket).
    s->pair->setSync(/*sync=*/true, /*busyPoll=*/false);
    s->memory.assign(kSlots, std::vector<uint64_t>(words, 0));
    for (int i = 0; i < kSlots; ++i) {
      s->buffers.push_back(s->pair->createRecvBuffer(SlotOf(s->from_lower, uint64_t(i)),
                                                     s->memory[size_t(i)].data(),
                                                     words * sizeof(uint64_t)));
    }
    sources_.push_back(std::move(s));
  }
  for (auto& s : sources_) s->thread = std::thread([this, p = s.get()] { Receive(p); });
  timer_ = std::thread([this] { Heartbeats(); });
  completer_ = std::thread([this] { CompleteSends(); });
}

Mailboxes::~Mailboxes() {
  Close();
  {
    std::lock_guard<std::mutex> lock(flight_mu_);
    stop_completer_ = true;
  }
  flight_cv_.notify_all();
  if (completer_.joinable()) completer_.join();
  for (auto& s : sources_)
    if (s->thread.joinable()) s->thread.join();
  sources_.clear();  // the receive buffers, before their connections
  std::lock_guard<std::mutex> lock(send_mu_);
  destinations_.clear();
}

void Mailboxes::Close() {
  Leave();
  Flush();  // every send written (or its connection gone)
}

void Mailboxes::Leave() {
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    stop_timer_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  closing_ = true;
  {
    std::lock_guard<std::mutex> lock(send_mu_);
    if (closed_) return;
    closed_ = true;
    for (auto& d : destinations_) {
      if (!d->failed) SendLocked(d.get(), Message(kGoodbyeMessage, 0, {}, 0, 0));
    }
  }
}

void Mailboxes::Flush() {
  std::unique_lock<std::mutex> lock(flight_mu_);
  ++flush_waiters_;
  flight_cv_.notify_all();
  flight_cv_.wait(lock, [&] { return in_flight_.empty() && writing_ == 0; });
  --flush_waiters_;
}

int64_t Mailboxes::in_flight() const {
  std::lock_guard<std::mutex> lock(flight_mu_);
  return static_cast<int64_t>(in_flight_.size()) + writing_;
}

int64_t Mailboxes::held_exchanges() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(inbox_.size());
}

void Mailboxes::CompleteSends() {
  // Woken by a batch of sends, not by each: a wake-up per message was a
  // share of the job's context switches. Sends written are complete, so the
  // waits return at once unless a peer stopped reading.
  std::unique_lock<std::mutex> lock(flight_mu_);
  for (;;) {
    flight_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] {
      return stop_completer_ || (flush_waiters_ > 0 && !in_flight_.empty()) ||
             in_flight_.size() >= size_t(kCompleteBatch);
    });
    if (in_flight_.empty() && stop_completer_) return;
    while (!in_flight_.empty()) {
      InFlight f = std::move(in_flight_.front());
      in_flight_.pop_front();
      ++writing_;
      lock.unlock();
      bool failed = false;
      try {
        f.buffer->waitSend();
      } catch (const std::exception&) {
        failed = true;
      }
      f.buffer.reset();
      f.memory.reset();
      if (failed) {
        std::lock_guard<std::mutex> send_lock(send_mu_);
        f.destination->failed = true;
      }
      lock.lock();
      --writing_;
    }
    flight_cv_.notify_all();  // Flush
  }
}

std::shared_ptr<std::vector<uint64_t>> Mailboxes::Message(uint64_t kind, uint64_t exchange,
                                                          std::span<const double> chunk,
                                                          uint64_t offset, uint64_t total) {
  auto memory = std::make_shared<std::vector<uint64_t>>(size_t(kOverheadWords) + chunk.size());
  uint64_t* w = memory->data();
  const uint64_t nonce = ++messages_;
  w[0] = kind;
  w[1] = nonce;
  w[2] = exchange;
  w[3] = chunk.size();
  w[4] = offset;
  w[5] = total;
  if (!chunk.empty()) std::memcpy(w + kHeaderWords, chunk.data(), chunk.size() * sizeof(double));
  w[size_t(kHeaderWords) + chunk.size()] = nonce ^ kTrailer;
  return memory;
}

bool Mailboxes::SendLocked(Destination* d, const std::shared_ptr<std::vector<uint64_t>>& memory) {
  try {
    const size_t bytes = memory->size() * sizeof(uint64_t);
    auto buffer =
        d->pair->createSendBuffer(SlotOf(d->from_lower, d->sequence++), memory->data(), bytes);
    buffer->send(0, bytes);
    bool batch = false;
    {
      std::lock_guard<std::mutex> lock(flight_mu_);
      in_flight_.push_back({d, std::move(buffer), memory});
      batch = in_flight_.size() == size_t(kCompleteBatch);
    }
    if (batch) flight_cv_.notify_all();
    d->last_sent = std::chrono::steady_clock::now();
    return true;
  } catch (const std::exception&) {
    d->failed = true;
    return false;
  }
}

std::vector<int> Mailboxes::Send(uint64_t exchange, std::span<const double> piece,
                                 const std::vector<int>& to) {
  std::vector<int> unreachable;
  std::lock_guard<std::mutex> lock(send_mu_);
  // The same bytes for every destination: one copy of the piece per gather.
  std::vector<std::shared_ptr<std::vector<uint64_t>>> chunks;
  for (size_t offset = 0; offset < piece.size() || chunks.empty(); offset += size_t(capacity_)) {
    const size_t length = std::min(piece.size() - offset, size_t(capacity_));
    chunks.push_back(
        Message(kDataMessage, exchange, piece.subspan(offset, length), offset, piece.size()));
  }
  for (auto& d : destinations_) {
    if (std::find(to.begin(), to.end(), d->peer) == to.end()) continue;
    bool sent = !closed_ && !d->failed;
    for (size_t i = 0; i < chunks.size() && sent; ++i) sent = SendLocked(d.get(), chunks[i]);
    if (!sent) unreachable.push_back(d->peer);
  }
  return unreachable;
}

void Mailboxes::Heartbeats() {
  std::unique_lock<std::mutex> timer(timer_mu_);
  while (!timer_cv_.wait_for(timer, heartbeat_every_, [&] { return stop_timer_; })) {
    std::lock_guard<std::mutex> lock(send_mu_);
    if (closed_) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& d : destinations_) {
      if (!d->failed && now - d->last_sent >= heartbeat_every_) {
        SendLocked(d.get(), Message(kHeartbeatMessage, 0, {}, 0, 0));
      }
    }
  }
}

void Mailboxes::Receive(Source* s) {
  const size_t words = size_t(capacity_ + kOverheadWords);
  auto gone = [&](std::string reason, bool timed_out) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gone_.emplace(s->peer, Gone{std::move(reason), timed_out});
      // Nothing more comes from it: its pieces to drop never will (they kept
      // their exchanges held for good; adversary s27 F4).
      for (BoxAt box = inbox_.begin(); box != inbox_.end();) {
        const BoxAt next = std::next(box);
        if (box->second.drop.erase(s->peer) != 0) EraseIfEmptyLocked(box);
        box = next;
      }
    }
    arrived_.notify_all();
  };
  Matrix partial;  // the piece being received
  for (uint64_t sequence = 0;; ++sequence) {
    const size_t i = size_t(sequence % kSlots);
    std::string failure;
    try {
      s->buffers[i]->waitRecv();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    uint64_t* w = s->memory[i].data();
    const uint64_t length = w[3];
    const bool whole =
        (w[0] == kDataMessage || w[0] == kHeartbeatMessage || w[0] == kGoodbyeMessage) &&
        length <= uint64_t(capacity_) && w[size_t(kHeaderWords) + length] == (w[1] ^ kTrailer);
    if (!whole) {
      gone(failure.empty() ? "a malformed message" : failure,
           !failure.empty() && ClassifyGlooError(failure) == GlooError::kTimeout);
      return;
    }
    const uint64_t kind = w[0];
    if (kind == kDataMessage) {
      // Chunks of one piece come one after another on a connection.
      const uint64_t offset = w[4], total = w[5];
      const bool valid = offset + length <= total && total < (uint64_t(1) << 40) &&
                         (offset == 0 || uint64_t(partial.size()) == total);
      if (!valid) {
        gone("a malformed message", false);
        return;
      }
      if (offset == 0) partial.resize(Eigen::Index(total), 1);
      if (length > 0) {
        std::memcpy(partial.data() + offset, w + kHeaderWords, length * sizeof(double));
      }
      if (offset + length == total) {
        bool wake = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          wake = FileLocked(s->peer, w[2], std::move(partial));
        }
        partial = Matrix();
        if (wake) arrived_.notify_all();
      }
    }
    // Consumed: a stale header or trailer must never pass for a new message.
    w[0] = 0;
    w[size_t(kHeaderWords) + length] = 0;
    if (kind == kGoodbyeMessage) {
      {
        // Goodbye in return, so that its receiver for this peer ends too, and
        // nothing more for it (heartbeats included).
        std::lock_guard<std::mutex> lock(send_mu_);
        for (auto& d : destinations_) {
          if (d->peer != s->peer) continue;
          if (!d->failed && !closed_) SendLocked(d.get(), Message(kGoodbyeMessage, 0, {}, 0, 0));
          d->failed = true;
        }
      }
      gone("peer " + std::to_string(s->peer) + " left the group", false);
      return;
    }
    if (!failure.empty()) {
      gone(failure, ClassifyGlooError(failure) == GlooError::kTimeout);
      return;
    }
    if (closing_) return;
    s->buffers[i].reset();
    s->buffers[i] = s->pair->createRecvBuffer(SlotOf(s->from_lower, sequence + kSlots), w,
                                              words * sizeof(uint64_t));
  }
}

Mailboxes::BoxAt Mailboxes::BoxLocked(uint64_t exchange) {
  auto [it, fresh] = inbox_.try_emplace(exchange);
  if (!fresh) return it;
  it->second.made = ++boxes_made_;
  inbox_order_.emplace(it->second.made, exchange);
  while (inbox_order_.size() > kHeldExchanges) {
    // The box just made is the newest: never this one. A box is never
    // empty, so its exchange loses pieces or drops: remembered (EndGather).
    const uint64_t oldest = inbox_order_.begin()->second;
    inbox_.erase(oldest);
    inbox_order_.erase(inbox_order_.begin());
    if (discarded_.insert(oldest).second) {
      discarded_order_.push_back(oldest);
      if (discarded_order_.size() > kDiscardedRemembered) {
        discarded_.erase(discarded_order_.front());
        discarded_order_.pop_front();
      }
    }
  }
  return it;
}

bool Mailboxes::EraseIfEmptyLocked(BoxAt box) {
  if (!box->second.pieces.empty() || !box->second.drop.empty()) return false;
  inbox_order_.erase(box->second.made);
  inbox_.erase(box);
  return true;
}

bool Mailboxes::FileLocked(int peer, uint64_t exchange, Matrix piece) {
  BoxAt it = BoxLocked(exchange);
  Box& box = it->second;
  if (auto d = box.drop.find(peer); d != box.drop.end()) {
    if (--d->second == 0) box.drop.erase(d);
    EraseIfEmptyLocked(it);
    return false;
  }
  box.pieces.emplace_back(peer, std::move(piece));
  return waiting_ && waiting_for_ == exchange && --wake_after_ <= 0;
}

namespace {
template <typename Pieces>
auto FindPiece(Pieces& pieces, int peer) {
  return std::find_if(pieces.begin(), pieces.end(), [&](const auto& e) { return e.first == peer; });
}
}  // namespace

bool Mailboxes::TakeLocked(uint64_t exchange, int peer, Matrix* piece) {
  auto it = inbox_.find(exchange);
  if (it == inbox_.end()) return false;
  std::vector<std::pair<int, Matrix>>& pieces = it->second.pieces;
  auto p = FindPiece(pieces, peer);
  if (p == pieces.end()) return false;
  *piece = std::move(p->second);
  pieces.erase(p);
  EraseIfEmptyLocked(it);
  return true;
}

bool Mailboxes::EndGather(uint64_t exchange, const std::vector<int>& missing) {
  std::lock_guard<std::mutex> lock(mu_);
  if (missing.empty()) return discarded_.count(exchange) != 0;
  BoxAt it = BoxLocked(exchange);
  Box& box = it->second;
  for (int q : missing) {
    // Come since the gather's last look: dropped now; else when it comes.
    if (auto p = FindPiece(box.pieces, q); p != box.pieces.end()) {
      box.pieces.erase(p);
    } else if (gone_.count(q) == 0) {
      ++box.drop[q];
    }
  }
  EraseIfEmptyLocked(it);
  return discarded_.count(exchange) != 0;
}

namespace {
// The threads destroying retired mailboxes, joined at exit.
class Reaper {
 public:
  ~Reaper() {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : threads_) t.join();
  }
  void Add(std::unique_ptr<Mailboxes> mail) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([m = std::move(mail)]() mutable { m.reset(); });
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};
}  // namespace

void RetireInBackground(std::unique_ptr<Mailboxes> mail) {
  static Reaper reaper;
  mail->Leave();
  reaper.Add(std::move(mail));
}

}  // namespace polyguard::internal
