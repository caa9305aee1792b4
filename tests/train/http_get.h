// A raw HTTP/1.1 request for tests of the status endpoint.
#ifndef POLYGUARD_TESTS_TRAIN_HTTP_GET_H_
#define POLYGUARD_TESTS_TRAIN_HTTP_GET_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

namespace polyguard::testing {

// A client socket connected to 127.0.0.1:port, or -1. Its sends and receives
// time out after 5 s, so a server that holds a client fails the test rather
// than hanging it.
inline int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  const timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A raw HTTP/1.1 request to 127.0.0.1:port; returns the whole response ("" if
// it cannot connect; what arrived if the server stalls past the timeout).
inline std::string Get(int port, const std::string& method, const std::string& target) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  const std::string request = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  std::string response;
  if (::write(fd, request.data(), request.size()) >= 0) {
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) response.append(buffer, size_t(n));
  }
  ::close(fd);
  return response;
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_TRAIN_HTTP_GET_H_
