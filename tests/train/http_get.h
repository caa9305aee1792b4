// A raw HTTP/1.1 request for tests of the status endpoint.
#ifndef POLYGUARD_TESTS_TRAIN_HTTP_GET_H_
#define POLYGUARD_TESTS_TRAIN_HTTP_GET_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace polyguard::testing {

// A raw HTTP/1.1 request to 127.0.0.1:port; returns the whole response.
inline std::string Get(int port, const std::string& method, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  if (::write(fd, request.data(), request.size()) < 0) return "";
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) response.append(buffer, size_t(n));
  ::close(fd);
  return response;
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_TRAIN_HTTP_GET_H_
