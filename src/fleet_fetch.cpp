// The network half of `sessiond status --all`: the replicas from DNS (or a
// list) and their /status over libcurl, all at once.

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <sys/socket.h>

#include <memory>
#include <set>
#include <stdexcept>

#include "sessiond/fleet_status.hpp"

namespace sessiond {
namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// "http://10.0.0.7:9464/" -> "10.0.0.7:9464": the name of a listed replica.
std::string url_name(std::string url) {
  auto scheme = url.find("://");
  if (scheme != std::string::npos) url = url.substr(scheme + 3);
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The pod behind an address: a StatefulSet pod's PTR record under its headless
// Service is "sessiond-1.sessiond-headless.NS.svc.cluster.local"; its first
// label names the replica. Other PTR forms (10-0-0-7.NS.pod...) say nothing.
std::optional<std::string> pod_name(const sockaddr* addr, socklen_t len) {
  char host[NI_MAXHOST];
  if (getnameinfo(addr, len, host, sizeof host, nullptr, 0, NI_NAMEREQD) != 0) return std::nullopt;
  std::string name = host;
  auto dot = name.find('.');
  std::string first = name.substr(0, dot);
  if (first.empty() || dot == std::string::npos) return std::nullopt;
  // Only "<statefulset>-<ordinal>.<service>...": a label ending in -N.
  auto dash = first.rfind('-');
  if (dash == std::string::npos || dash + 1 == first.size() ||
      first.find_first_not_of("0123456789", dash + 1) != std::string::npos)
    return std::nullopt;
  return first;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  constexpr std::size_t kMaxBody = 256 * 1024 * 1024;  // 100k sessions are ~30 MB
  if (body->size() + size * n > kMaxBody) return 0;    // aborts the transfer
  body->append(data, size * n);
  return size * n;
}

}  // namespace

std::vector<Peer> find_peers(const std::string& peers, int default_port) {
  std::vector<Peer> out;
  if (peers.find("://") != std::string::npos) {
    std::size_t pos = 0;
    while (pos <= peers.size()) {
      auto comma = peers.find(',', pos);
      if (comma == std::string::npos) comma = peers.size();
      std::string url = trim(peers.substr(pos, comma - pos));
      std::string name = url_name(url);
      while (!url.empty() && url.back() == '/') url.pop_back();
      if (!name.empty()) out.push_back({name, url});
      pos = comma + 1;
    }
    if (out.empty()) throw std::runtime_error("--peers: no URL in \"" + peers + "\"");
    return out;
  }
  std::string name = trim(peers);
  int port = default_port;
  // NAME:PORT (a DNS name has no colon; an IPv6 literal would be a URL).
  if (auto colon = name.rfind(':'); colon != std::string::npos && name.find(':') == colon) {
    try {
      port = std::stoi(name.substr(colon + 1));
    } catch (...) {
      throw std::runtime_error("--peers: bad port in \"" + name + "\"");
    }
    name = name.substr(0, colon);
  }
  if (name.empty())
    throw std::runtime_error("--peers: expected a DNS name or a comma list of URLs");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(name.c_str(), nullptr, &hints, &found); rc != 0)
    throw std::runtime_error("--peers: cannot resolve " + name + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  std::set<std::string> seen;
  for (auto* a = found; a; a = a->ai_next) {
    char ip[INET6_ADDRSTRLEN] = {};
    const void* raw =
        a->ai_family == AF_INET6
            ? static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr);
    if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
        !inet_ntop(a->ai_family, raw, ip, sizeof ip) || !seen.insert(ip).second)
      continue;
    const bool v6 = a->ai_family == AF_INET6;
    const std::string host_port =
        (v6 ? "[" + std::string(ip) + "]" : std::string(ip)) + ":" + std::to_string(port);
    out.push_back({pod_name(a->ai_addr, a->ai_addrlen).value_or(host_port), "http://" + host_port});
  }
  if (out.empty()) throw std::runtime_error("--peers: " + name + " has no A or AAAA record");
  return out;
}

std::vector<ReplicaAnswer> fetch_statuses(const std::vector<Peer>& peers,
                                          const std::string& admin_token,
                                          std::chrono::milliseconds timeout,
                                          const std::string& path) {
  static CurlGlobal global;
  std::vector<ReplicaAnswer> answers(peers.size());
  std::vector<CURL*> easy(peers.size(), nullptr);
  std::vector<std::string> urls(peers.size());
  curl_slist* headers = nullptr;
  // The token goes in a header only (never in a URL, a log or an error).
  if (!admin_token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + admin_token).c_str());
  CURLM* multi = curl_multi_init();
  for (std::size_t i = 0; i < peers.size(); ++i) {
    answers[i].replica = peers[i].name;
    urls[i] = peers[i].url + path;
    CURL* e = curl_easy_init();
    easy[i] = e;
    curl_easy_setopt(e, CURLOPT_URL, urls[i].c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &answers[i].body);
    curl_easy_setopt(e, CURLOPT_PRIVATE, reinterpret_cast<void*>(i));
    if (headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_multi_add_handle(multi, e);
  }
  // Every transfer has its own timeout, so this loop ends within `timeout`
  // (plus a poll); the bound on rounds is a second guard.
  int running = 1;
  for (int round = 0; running > 0 && round < 100000; ++round) {
    if (curl_multi_perform(multi, &running) != CURLM_OK) break;
    if (running > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    void* priv = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    auto& a = answers[reinterpret_cast<std::size_t>(priv)];
    if (msg->data.result == CURLE_OK) {
      long code = 0;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
      a.http_status = static_cast<int>(code);
    } else {
      a.error = curl_easy_strerror(msg->data.result);
    }
  }
  for (std::size_t i = 0; i < peers.size(); ++i) {
    if (!answers[i].http_status && answers[i].error.empty()) answers[i].error = "no answer";
    curl_multi_remove_handle(multi, easy[i]);
    curl_easy_cleanup(easy[i]);
  }
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  return answers;
}

}  // namespace sessiond
