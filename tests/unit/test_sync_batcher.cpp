// Group commit of saves (SyncBatcher): a save renames its new version in
// place at once and keeps the version it displaced until a sync made the new
// one durable; after a power loss before that sync, start-up restores an
// empty or torn file from that version (restore_from_leftovers).

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "sessiond/session_file.hpp"
#include "sessiond/sync_batcher.hpp"
#include "test_support.hpp"

using namespace sessiond;
using sessiond::testing::session_doc;
using sessiond::testing::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> leftovers(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name.front() == '.') out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string sid_of(const std::string& path) {
  auto loaded = load_session_file(path);
  REQUIRE(std::holds_alternative<LoadedSession>(loaded));
  return std::get<LoadedSession>(loaded).doc["cookies"][0]["value"].get<std::string>();
}

FileIdentity bot_writes(const std::string& path, const json& doc) {
  auto written = write_file_atomic(path, serialize_session(doc));
  REQUIRE(std::holds_alternative<FileIdentity>(written));
  return std::get<FileIdentity>(written);
}

// What a power loss before the sync can leave: the new file's name with
// nothing (or a part) of its content.
void lose_power_on(const std::string& path, std::size_t keep_bytes) {
  REQUIRE(::truncate(path.c_str(), static_cast<off_t>(keep_bytes)) == 0);
}

}  // namespace

TEST_CASE("a batched save keeps the displaced version until the sync", "[sync]") {
  auto method = GENERATE(SaveMethod::exchange, SaveMethod::pin_check);
  CAPTURE(to_string(method));
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto read = bot_writes(path, session_doc(std::nullopt, "old"));
  SyncBatcher sync(dir.path, nullptr);
  // The batcher's thread may already have synced when we look: either the
  // previous version is still kept, or it is gone; never anything else.
  auto out = save_if_unchanged(path, session_doc(std::nullopt, "new"), read, method, {}, &sync);
  REQUIRE(out.kind == SaveOutcome::Kind::saved);
  CHECK(sid_of(path) == "new");
  auto kept = leftovers(dir.path);
  CHECK(kept.size() <= 1);
  for (const auto& name : kept) {
    // The sync may remove it between the listing and this read.
    const std::string kept_path = dir.path + "/" + name;
    auto loaded = load_session_file(kept_path);
    if (std::holds_alternative<LoadedSession>(loaded))
      CHECK(std::get<LoadedSession>(loaded).doc["cookies"][0]["value"] == "old");
    else
      CHECK_FALSE(fs::exists(kept_path));
  }
  REQUIRE(sync.flush());
  CHECK(leftovers(dir.path).empty());
  CHECK(sync.syncs() >= 1);
  CHECK(sid_of(path) == "new");
}

TEST_CASE("a save that lost to the bot hands nothing to the batcher", "[sync]") {
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto read = bot_writes(path, session_doc(std::nullopt, "old"));
  bot_writes(path, session_doc(std::nullopt, "bot"));
  SyncBatcher sync(dir.path, nullptr);
  auto out = save_if_unchanged(path, session_doc(std::nullopt, "ours"), read, SaveMethod::exchange,
                               {}, &sync);
  CHECK(out.kind == SaveOutcome::Kind::changed_on_disk);
  REQUIRE(sync.flush());
  CHECK(sync.syncs() == 0);
  CHECK(sid_of(path) == "bot");
  CHECK(leftovers(dir.path).empty());
}

TEST_CASE("saves from many threads are all synced and their previous versions removed", "[sync]") {
  TempDir dir;
  constexpr int kSessions = 40, kRounds = 5;
  std::vector<std::string> paths;
  std::vector<FileIdentity> known;
  for (int i = 0; i < kSessions; ++i) {
    paths.push_back(session_path(dir.path, "acct" + std::to_string(i)));
    known.push_back(bot_writes(paths.back(), session_doc(std::nullopt, "v0")));
  }
  SyncBatcher sync(dir.path, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 1; r <= kRounds; ++r)
        for (int i = t; i < kSessions; i += 4) {
          auto out = save_if_unchanged(paths[i], session_doc(std::nullopt, "v" + std::to_string(r)),
                                       known[i], &sync);
          if (out.kind == SaveOutcome::Kind::saved) known[i] = out.identity;
        }
    });
  for (auto& t : threads) t.join();
  REQUIRE(sync.flush());
  CHECK(leftovers(dir.path).empty());
  for (const auto& p : paths) CHECK(sid_of(p) == "v" + std::to_string(kRounds));
  // Group commit: at least one sync, never more than one per save.
  CHECK(sync.syncs() >= 1);
  CHECK(sync.syncs() <= static_cast<std::uint64_t>(kSessions * kRounds));
}

TEST_CASE("saves inside one gather window share one sync, which a flush starts at once", "[sync]") {
  TempDir dir;
  constexpr int kSessions = 10;
  std::vector<std::string> paths;
  std::vector<FileIdentity> known;
  for (int i = 0; i < kSessions; ++i) {
    paths.push_back(session_path(dir.path, "acct" + std::to_string(i)));
    known.push_back(bot_writes(paths.back(), session_doc(std::nullopt, "v0")));
  }
  // A window no test outlasts: only the flush can end the batch.
  SyncBatcher sync(dir.path, nullptr, std::chrono::hours(1));
  for (int i = 0; i < kSessions; ++i)
    REQUIRE(save_if_unchanged(paths[i], session_doc(std::nullopt, "v1"), known[i],
                              SaveMethod::exchange, {}, &sync)
                .kind == SaveOutcome::Kind::saved);
  CHECK(leftovers(dir.path).size() == kSessions);  // every previous version kept until the sync
  CHECK(sync.syncs() == 0);
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(sync.flush(std::chrono::seconds(20)));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  CHECK(sync.syncs() == 1);
  CHECK(leftovers(dir.path).empty());
}

TEST_CASE("start-up restores a file a power loss left empty or torn from its previous version",
          "[sync]") {
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  const std::string other = session_path(dir.path, "acct2");
  auto read = bot_writes(path, session_doc(std::nullopt, "old"));
  auto read_other = bot_writes(other, session_doc(std::nullopt, "old2"));
  // Two saves whose sync never came (the power went): each left its
  // previous version under a temp name, as a batched save does.
  REQUIRE(::link(path.c_str(), (dir.path + "/.session-acct1.json.tmp-1-2-3").c_str()) == 0);
  REQUIRE(save_if_unchanged(path, session_doc(std::nullopt, "new"), read).kind ==
          SaveOutcome::Kind::saved);
  REQUIRE(::link(other.c_str(), (dir.path + "/.session-acct2.json.tmp-1-2-4").c_str()) == 0);
  REQUIRE(save_if_unchanged(other, session_doc(std::nullopt, "new2"), read_other).kind ==
          SaveOutcome::Kind::saved);
  SECTION("empty") {
    lose_power_on(path, 0);
  }
  SECTION("torn") {
    lose_power_on(path, 40);
  }
  // A half-written temp file of a later save is not a candidate.
  { std::ofstream(dir.path + "/.session-acct1.json.tmp-9-9-9") << "{\"cookies\": ["; }
  auto restored = restore_from_leftovers(dir.path);
  CHECK(restored == std::vector<std::string>{path});
  CHECK(sid_of(path) == "old");
  // A file that loads is never touched, whatever lies next to it.
  CHECK(sid_of(other) == "new2");
  CHECK(fs::exists(dir.path + "/.session-acct2.json.tmp-1-2-4"));
  // Nothing complete to restore from: the broken file stays as it is.
  lose_power_on(other, 0);
  fs::remove(dir.path + "/.session-acct2.json.tmp-1-2-4");
  CHECK(restore_from_leftovers(dir.path).empty());
  CHECK(fs::file_size(other) == 0);
}
