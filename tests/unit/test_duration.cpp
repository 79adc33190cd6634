#include <catch2/catch.hpp>

#include "sessiond/duration.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {
std::optional<Millis> ms(long long n) {
  return Millis(n);
}
}  // namespace

TEST_CASE("parse_duration: single units and bare seconds", "[duration]") {
  CHECK(parse_duration("500ms") == ms(500));
  CHECK(parse_duration("5s") == ms(5000));
  CHECK(parse_duration("2h") == ms(7200000));
  CHECK(parse_duration("1.5s") == ms(1500));
  CHECK(parse_duration("0.5m") == ms(30000));
  CHECK(parse_duration("10") == ms(10000));
  CHECK(parse_duration("0") == ms(0));
  CHECK(parse_duration("0ms") == ms(0));
}

TEST_CASE("parse_duration: compounds from the largest unit down", "[duration]") {
  CHECK(parse_duration("1m30s") == ms(90000));
  CHECK(parse_duration("1h30m15s") == ms(5415000));
  CHECK(parse_duration("1h30m") == ms(5400000));
  CHECK(parse_duration("2h500ms") == ms(7200500));
  CHECK(parse_duration("1s250ms") == ms(1250));
  CHECK(parse_duration("1h0m0s") == ms(3600000));
  CHECK(parse_duration("1.5m30s") == ms(120000));
}

TEST_CASE("parse_duration: garbage is rejected", "[duration]") {
  for (const char* bad :
       {"",       "s",     "ms",   "5x",     "5sec", "5 s",    " 5s",     "5s ",
        "1h 30m", "-1s",   "+1s",  "1m-30s", ".",    "1.2.3s", "..s",     "1e9",
        "1e3s",   "0x10s", "1m30", "30s1m",  "1m1m", "1s1s",   "500ms1s", "1h30m15s5",
        "1hh",    "5S",    "5M",   "inf",    "nan",  "1,5s",   "1m\n"})
    CHECK_FALSE(parse_duration(bad));
  CHECK_FALSE(parse_duration(std::string_view("5s\0", 3)));
}

TEST_CASE("parse_duration: bounds and overflow", "[duration]") {
  CHECK(parse_duration("1000000000000ms") == ms(1000000000000));  // the cap itself
  CHECK_FALSE(parse_duration("1000000000001ms"));
  CHECK(parse_duration("277777h") == ms(277777LL * 3600000));
  CHECK_FALSE(parse_duration("277778h"));
  CHECK_FALSE(parse_duration("1e9h"));
  CHECK_FALSE(parse_duration("99999999999999999999h"));
  CHECK_FALSE(parse_duration(std::string(400, '9') + "s"));  // stod out of range
  CHECK_FALSE(parse_duration("277777h59m"));                 // the sum crosses the cap
}

TEST_CASE("format_duration round-trips through parse_duration", "[duration]") {
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(5min) == "5m");
  CHECK(format_duration(1500ms) == "1500ms");
  for (Millis d : {Millis(0), Millis(1), Millis(999), Millis(90000), Millis(5415000),
                   Millis(86400000), Millis(1000000000000)})
    CHECK(parse_duration(format_duration(d)) == std::optional<Millis>(d));
}
