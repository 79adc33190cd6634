#pragma once
// Invariants of the fuzz targets: a violation prints what broke and aborts,
// which libFuzzer reports as a crash (and saves the input as crash-<sha1>).

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(cond, what)                                                           \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "invariant violated at %s:%d: %s [%s]\n", __FILE__, __LINE__, \
                   std::string(what).c_str(), #cond);                                    \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#define FUZZ_FAIL(what) FUZZ_CHECK(false, what)
