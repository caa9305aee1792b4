// A user's program against the installed polyguard: encode, multiply, lose a
// peer, corrupt another, decode.
#include <cstdio>

#include <polyguard/polyguard.h>

int main() {
  using namespace polyguard;
  auto code = PolyDotCode::Create({6, 8, 3}, {.peers = 8, .m = 2, .n = 2, .d = 1});
  if (!code.ok()) return 1;
  Random rng(7);
  const Matrix a = rng.NormalMatrix(6, 8), b = rng.NormalMatrix(8, 3);
  std::vector<PeerResult> results;
  for (int p = 1; p < 8; ++p) {  // peer 0 straggles
    Matrix y = (*code)->PeerProduct((*code)->EncodeShard(a, p).value(),
                                    (*code)->EncodeInput(b, p).value());
    if (p == 4) y(0, 0) += 1.0;  // a soft error
    results.push_back({p, y});
  }
  auto decoded = (*code)->Decode(results);
  if (!decoded.ok()) {
    std::fprintf(stderr, "%s\n", decoded.status().ToString().c_str());
    return 1;
  }
  const double err = (decoded->product - a * b).norm();
  std::printf("error %.3g, wrong peers: %s\n", err, FormatPeers(decoded->wrong_peers).c_str());
  return err < 1e-10 && decoded->wrong_peers == std::vector<int>{4} ? 0 : 1;
}
