// Several sites in one config file, and how each site names its files.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sessiond/config.hpp"
#include "sessiond/session_file.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

struct ConfigFile {
  std::string path;
  explicit ConfigFile(const std::string& content) {
    char tmpl[] = "/tmp/sessiond-unit-sites-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
    std::ofstream(path) << content;
  }
  ~ConfigFile() { std::remove(path.c_str()); }
};

Config parse_file(const std::string& content, std::vector<const char*> extra = {}) {
  ConfigFile f(content);
  std::vector<const char*> argv = {"sessiond", "run", "--config", f.path.c_str()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return parse_config(static_cast<int>(argv.size()), argv.data(), {});
}

std::string error_of(const std::string& content) {
  try {
    parse_file(content);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("accepted: " << content);
  return {};
}

const char* kThree = R"({
  "interval": "4m",
  "sites": [
    {"name": "baman24", "profile": "profiles/baman24.json", "sessions_dir": "/s/baman24"},
    {"name": "rade", "profile": "profiles/rade.json", "sessions_dir": "/s/rade",
     "interval": "2m", "idle_timeout": "15m", "on_logged_out": "mark", "max_in_flight": 4,
     "base_url": "http://127.0.0.1:8080"},
    {"name": "nics24", "profile": "profiles/nics24.json", "sessions_dir": "/s/nics24",
     "file_pattern": "{id}_session.json"}
  ]
})";

}  // namespace

TEST_CASE("a config file lists sites, each with its own settings", "[sites][config]") {
  auto c = parse_file(kThree);
  auto sites = sites_of(c);
  REQUIRE(sites.size() == 3);
  CHECK(sites[0].name == "baman24");
  CHECK(sites[0].file_pattern == "session-{id}.json");
  CHECK_FALSE(sites[0].interval);  // the flags' (4m), then the profile's
  CHECK(c.interval == Millis(240000));
  CHECK(sites[1].interval == Millis(120000));
  CHECK(sites[1].idle_timeout == Millis(900000));
  CHECK(sites[1].on_logged_out == OnLoggedOut::mark);
  CHECK(sites[1].max_in_flight == std::size_t(4));
  CHECK(sites[1].base_url == "http://127.0.0.1:8080");
  CHECK(sites[2].file_pattern == "{id}_session.json");
  CHECK(sites[2].sessions_dir == "/s/nics24");
}

TEST_CASE("without sites, the flags are one site", "[sites][config]") {
  const char* argv[] = {"sessiond", "run", "--profile", "p.json", "--sessions-dir", "/d"};
  auto c = parse_config(6, argv, {});
  auto sites = sites_of(c);
  REQUIRE(sites.size() == 1);
  CHECK(sites[0].name.empty());  // filled in from the profile's name
  CHECK(sites[0].profile_path == "p.json");
  CHECK(sites[0].sessions_dir == "/d");
  CHECK(sites[0].file_pattern == "session-{id}.json");
  CHECK(site_name_from("Baman24") == "baman24");
  CHECK(site_name_from("my site.ir") == "my-site-ir");
  CHECK(site_name_from("") == "default");
  CHECK(site_name_from("###") == "default");
  CHECK(site_name_from(std::string(40, 'a')).size() == 32);
}

TEST_CASE("bad sites give a ConfigError naming the site and the key", "[sites][config]") {
  auto has = [](const std::string& text, const std::string& part) {
    INFO(text);
    CHECK(text.find(part) != std::string::npos);
  };
  has(error_of(R"({"sites": []})"), "sites: expected a non-empty array");
  has(error_of(R"({"sites": [{"profile": "p", "sessions_dir": "d"}]})"),
      "sites[0]: name is required");
  has(error_of(R"({"sites": [{"name": "Bad Name", "profile": "p", "sessions_dir": "d"}]})"),
      "sites[0]: name: expected [a-z0-9_-]{1,32}");
  has(error_of(R"({"sites": [{"name": "a", "sessions_dir": "d"}]})"),
      "site \"a\": profile is required");
  has(error_of(R"({"sites": [{"name": "a", "profile": "p"}]})"),
      "site \"a\": sessions_dir is required");
  has(error_of(R"({"sites": [{"name": "a", "profile": "p", "sessions_dir": "d",
                   "file_pattern": "{id}-{id}.json"}]})"),
      "site \"a\": file_pattern \"{id}-{id}.json\": expected exactly one {id}");
  has(error_of(R"({"sites": [{"name": "a", "profile": "p", "sessions_dir": "d",
                   "interval": "soon"}]})"),
      "site \"a\": interval: expected a positive duration");
  has(error_of(R"({"sites": [{"name": "a", "profile": "p", "sessions_dir": "d",
                   "on_logged_out": "burn"}]})"),
      "site \"a\": on_logged_out: expected quarantine, mark or delete");
  has(error_of(R"({"sites": [{"name": "a", "profile": "p", "sessions_dir": "d", "colour": 1}]})"),
      "site \"a\": unknown key \"colour\"");
  has(error_of(R"({"sites": [{"name": "a", "profile": "p", "sessions_dir": "d"},
                             {"name": "a", "profile": "q", "sessions_dir": "e"}]})"),
      "site \"a\": name: used by two sites");
  has(error_of(R"({"sites": [{"name": "a", "profile": "p", "sessions_dir": "d"},
                             {"name": "b", "profile": "q", "sessions_dir": "d"}]})"),
      "site \"b\": file_pattern: \"session-{id}.json\" and site \"a\"'s \"session-{id}.json\" "
      "can name the same file in the same directory");
  // Patterns that can match one name (session-x.json is {id}.json too), and
  // one directory however spelled.
  has(error_of(R"({"sites": [{"name": "a", "profile": "p", "sessions_dir": "d"},
                             {"name": "b", "profile": "q", "sessions_dir": "./d/",
                              "file_pattern": "{id}.json"}]})"),
      "can name the same file in the same directory");
  // Two sites may share a directory when no name matches both patterns.
  CHECK(sites_of(parse_file(R"({"sites": [
      {"name": "a", "profile": "p", "sessions_dir": "d"},
      {"name": "b", "profile": "q", "sessions_dir": "d", "file_pattern": "acct-{id}.json"},
      {"name": "c", "profile": "q", "sessions_dir": "d", "file_pattern": "session-{id}.txt"}]})"))
            .size() == 3);
  // The file's path leads every message.
  ConfigFile f(R"({"sites": [{"name": "a"}]})");
  const char* argv[] = {"sessiond", "run", "--config", f.path.c_str()};
  try {
    parse_config(4, argv, {});
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).rfind(f.path + ": site \"a\"", 0) == 0);
  }
}

TEST_CASE("the profile flag and a config file's sites are exclusive, and status takes a site",
          "[sites][config]") {
  ConfigFile f(kThree);
  const char* argv[] = {"sessiond", "run", "--config", f.path.c_str(), "--profile", "x.json"};
  auto c = parse_config(6, argv, {});
  CHECK_THROWS_AS(sites_of(c), ConfigError);
  const char* status[] = {"sessiond", "status", "--site", "rade"};
  CHECK(parse_config(4, status, {}).site == "rade");
  const char* bad[] = {"sessiond", "status", "--site", "No"};
  CHECK_THROWS_AS(parse_config(4, bad, {}), ConfigError);
}

TEST_CASE("file patterns: ids in and out", "[sites][pattern]") {
  FilePattern def;
  CHECK(def.text() == "session-{id}.json");
  CHECK(def.id_of("session-a.json") == std::optional<std::string>("a"));

  auto nics = FilePattern::parse("{id}_session.json");
  REQUIRE(nics);
  CHECK(nics->id_of("alice_session.json") == std::optional<std::string>("alice"));
  CHECK(nics->id_of("a.b-c_session.json") == std::optional<std::string>("a.b-c"));
  CHECK(nics->filename("bob") == "bob_session.json");
  CHECK(nics->path("/d", "bob") == "/d/bob_session.json");
  CHECK_FALSE(nics->id_of("_session.json"));
  CHECK_FALSE(nics->id_of("session-a.json"));
  CHECK_FALSE(nics->id_of(".alice_session.json"));  // hidden: a writer's
  CHECK_FALSE(nics->id_of(".alice_session.json.tmp-1"));
  CHECK_FALSE(nics->id_of("a b_session.json"));
  CHECK(nics->id_of(nics->filename("x-1")) == std::optional<std::string>("x-1"));

  auto prefixed = FilePattern::parse("acct-{id}");
  REQUIRE(prefixed);
  CHECK(prefixed->id_of("acct-7") == std::optional<std::string>("7"));

  std::string why;
  CHECK_FALSE(FilePattern::parse("session.json", &why));
  CHECK(why == "expected exactly one {id}");
  CHECK_FALSE(FilePattern::parse("{id}{id}", &why));
  CHECK_FALSE(FilePattern::parse("{id}", &why));
  CHECK_FALSE(FilePattern::parse("a/{id}.json", &why));
  CHECK_FALSE(FilePattern::parse(".{id}.json", &why));
  CHECK(why == "must not start with a dot (temp files do)");
  CHECK_FALSE(FilePattern::parse("{id} .json", &why));
}

TEST_CASE("file patterns that can name the same file overlap", "[sites][pattern]") {
  auto p = [](const char* text) { return *FilePattern::parse(text); };
  CHECK(p("session-{id}.json").overlaps(p("session-{id}.json")));
  CHECK(p("session-{id}.json").overlaps(p("{id}.json")));  // session-x.json: both
  CHECK(p("{id}.json").overlaps(p("session-{id}.json")));
  CHECK(p("session-{id}.json").overlaps(p("{id}_session.json")));  // session-x_session.json
  CHECK(p("a-{id}").overlaps(p("a-b-{id}")));
  CHECK_FALSE(p("session-{id}.json").overlaps(p("acct-{id}.json")));
  CHECK_FALSE(p("session-{id}.json").overlaps(p("session-{id}.txt")));
  CHECK_FALSE(p("{id}_a.json").overlaps(p("{id}_b.json")));
  // Checked against the ids themselves: a name both accept exists for each overlap.
  CHECK(p("{id}.json").id_of("session-x.json"));
  CHECK(p("{id}_session.json").id_of("session-x_session.json"));
  CHECK(p("session-{id}.json").id_of("session-x_session.json"));
}

TEST_CASE("stale temp files and quarantine follow the site's pattern", "[sites][pattern]") {
  char tmpl[] = "/tmp/sessiond-unit-pattern-XXXXXX";
  REQUIRE(::mkdtemp(tmpl));
  const std::string dir = tmpl;
  auto pattern = *FilePattern::parse("{id}_session.json");
  auto touch = [&](const std::string& name) { std::ofstream(dir + "/" + name) << "{}"; };
  touch(".alice_session.json.tmp-abc");      // ours: a crashed save
  touch(".alice_session.json.tmp-abc.pin");  // ours: the NFS path's pin
  touch(".other.tmp-abc");                   // not ours
  touch("alice_session.json");
  // Old enough: min_age 0.
  CHECK(remove_stale_temp_files(dir, std::chrono::seconds(0), pattern) == 2);
  CHECK(::access((dir + "/.other.tmp-abc").c_str(), F_OK) == 0);
  CHECK(remove_stale_temp_files(dir, std::chrono::seconds(0)) == 0);  // default pattern: none

  auto moved = quarantine_file(dir + "/alice_session.json", dir);
  REQUIRE(std::holds_alternative<std::string>(moved));
  CHECK(std::get<std::string>(moved) == dir + "/invalid/alice_session.json");
  touch("alice_session.json");
  moved = quarantine_file(dir + "/alice_session.json", dir);
  REQUIRE(std::holds_alternative<std::string>(moved));
  const auto& second = std::get<std::string>(moved);
  CHECK(second.rfind(dir + "/invalid/alice_session.", 0) == 0);
  CHECK(second.substr(second.size() - 5) == ".json");
  std::filesystem::remove_all(dir);
}

TEST_CASE("config/multi-site.example.json: three sites with bundled profiles", "[sites][config]") {
  // The repository root, as test_profile finds it (at most 6 levels up).
  std::filesystem::path root;
  if (const char* env = std::getenv("SESSIOND_SOURCE_DIR"); env && *env) root = env;
  for (auto p = std::filesystem::current_path(); root.empty(); p = p.parent_path()) {
    if (std::filesystem::exists(p / "config" / "multi-site.example.json")) root = p;
    if (!p.has_parent_path() || p.parent_path() == p || p.string().size() < 2) break;
  }
  REQUIRE_FALSE(root.empty());
  const std::string file = (root / "config" / "multi-site.example.json").string();
  const char* argv[] = {"sessiond", "check-config", "--config", file.c_str()};
  auto sites = sites_of(parse_config(4, argv, {}));
  REQUIRE(sites.size() == 3);
  CHECK(sites[0].name == "baman24");
  CHECK(sites[1].name == "rade");
  CHECK(sites[2].name == "nics24");
  CHECK(sites[2].file_pattern == "{id}_session.json");
  for (const auto& s : sites) CHECK(std::filesystem::exists(root / s.profile_path));
}
