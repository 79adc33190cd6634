// The webhook's POST: one libcurl easy handle per webhook thread, kept for
// keep-alive. Separate from the refresh HttpClient on purpose: a receiver that
// hangs ties up this thread only, never a refresh slot.

#include <curl/curl.h>

#include <mutex>

#include "sessiond/hooks.hpp"

namespace sessiond {

namespace {

size_t discard_body(char*, size_t size, size_t n, void*) {
  return size * n;  // the receiver's answer is not used
}

int check_abort(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* abort = static_cast<const std::function<bool()>*>(userdata);
  return (*abort && (*abort)()) ? 1 : 0;
}

CURL* new_handle() {
  static std::once_flag once;  // curl_global_init is not thread-safe on every build
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return curl_easy_init();
}

}  // namespace

WebhookPoster::WebhookPoster(Millis timeout, std::function<bool()> abort)
    : timeout_(timeout), abort_(std::move(abort)), curl_(new_handle()) {}

WebhookPoster::~WebhookPoster() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

WebhookResponse WebhookPoster::post(const WebhookRequest& request) {
  WebhookResponse out;
  auto* curl = static_cast<CURL*>(curl_);
  if (!curl) {
    out.error = "curl_easy_init failed";
    return out;
  }
  curl_easy_reset(curl);  // keeps the connection cache
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers)
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sessiond/" SESSIOND_VERSION);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is not a delivery
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_abort);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &abort_);
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  } else {
    out.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  }
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  return out;
}

}  // namespace sessiond
