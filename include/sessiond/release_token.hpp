#pragma once
// A place held in a bounded resource (a slot at a site's admission gate, an
// answer in the HTTP client's window), given back when the last copy of its
// token goes: when the holder is done, or when a message carrying it to an
// actor that is gone is dropped, or at shutdown. Nothing has to remember to
// release it, so nothing leaks a place.

#include <memory>
#include <utility>

namespace sessiond {

using ReleaseToken = std::shared_ptr<const void>;

// `on_release` runs once, on the thread that drops the last copy: keep it
// short and non-throwing. The token is never null.
template <class OnRelease>
ReleaseToken make_release_token(OnRelease on_release) {
  static const char kPlace = 0;  // any non-null address: the token is only a lifetime
  return ReleaseToken(&kPlace, [f = std::move(on_release)](const void*) mutable { f(); });
}

}  // namespace sessiond
