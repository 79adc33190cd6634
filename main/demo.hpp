#pragma once
// `sessiond demo`: the bundled fake site as a child process (the
// sessiond-fakesite executable next to this binary; the product binary
// carries no test fakes), a few logged-in accounts, and a short timeline of
// things to watch: a new login after 8 s, a forced logout after 15 s.

#include <sys/types.h>

#include <atomic>
#include <string>
#include <thread>

namespace sessiond {

class DemoSite {
 public:
  // Starts the fake site with `sessions` accounts logged in; throws
  // std::runtime_error with the reason.
  explicit DemoSite(int sessions);
  ~DemoSite();  // stops the timeline and the site, removes the temp directories
  DemoSite(const DemoSite&) = delete;
  DemoSite& operator=(const DemoSite&) = delete;

  const std::string& base_url() const { return base_url_; }
  const std::string& sessions_dir() const { return sessions_dir_; }
  void start_timeline();
  // Before the daemon drains: nothing more is written into the sessions
  // directory. The site stays up until the destructor (in-flight refreshes).
  void stop_timeline();

 private:
  void start_site(const std::string& site_binary);
  void timeline();
  bool admin_post(const std::string& path, const std::string& body);

  int sessions_;
  std::string work_dir_;  // holds the sessions directory and the port file
  std::string sessions_dir_;
  std::string base_url_;
  int admin_port_ = 0;
  pid_t pid_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sessiond
