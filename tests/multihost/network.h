// Several hosts on one machine for the multi-host tests: each host a network
// namespace with one address, all joined by a bridge in a "switch"
// namespace (iproute2's `ip netns` and veth pairs; needs root). Processes
// run inside a host with RunIn; everything is killed and the namespaces
// deleted when the Network goes away.
#ifndef POLYGUARD_TESTS_MULTIHOST_NETWORK_H_
#define POLYGUARD_TESTS_MULTIHOST_NETWORK_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace polyguard::testing {

class Network {
 public:
  // `hosts` hosts with addresses 10.200.S.1, 10.200.S.2, ... (S from the
  // process id, so that concurrent test processes do not collide). Null,
  // with the reason in *why, when namespaces cannot be made here.
  static std::unique_ptr<Network> Create(int hosts, std::string* why) {
    auto net = std::unique_ptr<Network>(new Network(hosts));
    if (::geteuid() != 0) {
      *why = "not root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN";
      return nullptr;
    }
    const std::string sw = net->prefix_ + "sw";
    std::vector<std::string> script = {"ip netns add " + sw, "ip -n " + sw + " link set lo up",
                                       "ip -n " + sw + " link add br0 type bridge",
                                       "ip -n " + sw + " link set br0 up"};
    for (int i = 0; i < hosts; ++i) {
      const std::string h = net->Namespace(i), hv = net->prefix_ + "h" + std::to_string(i),
                        sv = net->prefix_ + "s" + std::to_string(i);
      for (const std::string& c :
           {"ip netns add " + h, "ip link add " + hv + " type veth peer name " + sv,
            "ip link set " + hv + " netns " + h, "ip link set " + sv + " netns " + sw,
            "ip -n " + sw + " link set " + sv + " master br0",
            "ip -n " + sw + " link set " + sv + " up",
            "ip -n " + h + " addr add " + net->Address(i) + "/24 dev " + hv,
            "ip -n " + h + " link set " + hv + " up", "ip -n " + h + " link set lo up"})
        script.push_back(c);
    }
    for (const std::string& c : script) {
      std::string out;
      if (!Run(c, &out)) {
        *why = "cannot build the test network (`" + c + "`): " + out;
        return nullptr;
      }
    }
    return net;
  }

  ~Network() {
    for (pid_t pid : pids_) {
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
    }
    std::string out;
    for (int i = 0; i < hosts_; ++i) {
      // (Whatever a host still runs: its processes die with it.)
      Run("ip netns pids " + Namespace(i) + " | xargs -r kill -9", &out);
      Run("ip netns del " + Namespace(i), &out);
    }
    Run("ip netns del " + prefix_ + "sw", &out);
  }

  std::string Namespace(int host) const { return prefix_ + "n" + std::to_string(host); }
  std::string Address(int host) const {
    return "10.200." + std::to_string(subnet_) + "." + std::to_string(host + 1);
  }

  // Starts `command` (one program and its arguments, for sh) inside `host`, its output in
  // `log`; returns its pid (killed when the Network goes away, if still
  // running). Wait for it with Wait.
  pid_t RunIn(int host, const std::string& command, const std::string& log) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string line = "exec ip netns exec " + Namespace(host) + " sh -c 'exec " + command +
                               "' > " + log + " 2>&1";
      ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    pids_.push_back(pid);
    return pid;
  }
  // The exit code of a process started by RunIn (-1 when killed by a signal).
  int Wait(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    for (pid_t& p : pids_)
      if (p == pid) p = -1;
    std::erase(pids_, -1);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // A command inside `host`, run to completion: whether it exited 0.
  bool Exec(int host, const std::string& command, std::string* out) {
    return Run("ip netns exec " + Namespace(host) + " " + command, out);
  }
  // Takes host's link to the switch down (or up): a cable pulled.
  bool SetLink(int host, bool up) {
    std::string out;
    return Run("ip -n " + prefix_ + "sw link set " + prefix_ + "s" + std::to_string(host) +
                   (up ? " up" : " down"),
               &out);
  }

 private:
  explicit Network(int hosts)
      : hosts_(hosts),
        subnet_(1 + int(::getpid() % 250)),
        prefix_("pg" + std::to_string(::getpid() % 100000)) {}

  static bool Run(const std::string& command, std::string* out) {
    const std::string file = "/tmp/polyguard-netns-" + std::to_string(::getpid()) + ".out";
    const int rc = std::system((command + " > " + file + " 2>&1").c_str());
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    *out = text.str();
    std::remove(file.c_str());
    return rc == 0;
  }

  int hosts_;
  int subnet_;
  std::string prefix_;
  std::vector<pid_t> pids_;
};

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_MULTIHOST_NETWORK_H_
