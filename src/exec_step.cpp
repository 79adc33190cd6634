#include "sessiond/exec_step.hpp"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <variant>

namespace sessiond {

namespace {

constexpr const char* kRedacted = "[redacted]";

void add_secret(std::vector<std::string>& out, const nlohmann::json& value) {
  if (!value.is_string()) return;
  const auto& text = value.get_ref<const std::string&>();
  if (text.size() >= kMinSecretLength) out.push_back(text);
  // "Bearer <token>": the token alone may be echoed too.
  std::istringstream words(text);
  for (std::string w; words >> w;)
    if (w.size() >= kMinSecretLength && w != text) out.push_back(w);
}

void add_document_secrets(std::vector<std::string>& out, const nlohmann::json& doc) {
  if (!doc.is_object()) return;
  if (auto c = doc.find("cookies"); c != doc.end() && c->is_array())
    for (const auto& cookie : *c)
      if (cookie.is_object() && cookie.contains("value")) add_secret(out, cookie["value"]);
  if (auto o = doc.find("origins"); o != doc.end() && o->is_array())
    for (const auto& origin : *o)
      if (origin.is_object() && origin.contains("localStorage") &&
          origin["localStorage"].is_array())
        for (const auto& item : origin["localStorage"])
          if (item.is_object() && item.contains("value")) add_secret(out, item["value"]);
  if (auto h = doc.find("headers"); h != doc.end() && h->is_object())
    for (const auto& [name, value] : h->items()) add_secret(out, value);
}

// Longest first: a secret that contains another is replaced whole.
void sort_secrets(std::vector<std::string>& secrets) {
  std::sort(secrets.begin(), secrets.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  secrets.erase(std::unique(secrets.begin(), secrets.end()), secrets.end());
}

}  // namespace

std::vector<std::string> exec_environment(const std::vector<std::string>& pass_through,
                                          const std::string& private_dir) {
  std::vector<std::string> env = base_child_environment();
  std::vector<std::string> names;
  for (const auto& entry : env) names.push_back(entry.substr(0, entry.find('=')));
  auto add = [&](const std::string& name, const char* value) {
    if (!value || std::find(names.begin(), names.end(), name) != names.end()) return;
    names.push_back(name);
    env.push_back(name + "=" + value);
  };
  add("TMPDIR", private_dir.c_str());
  for (const auto& name : pass_through) {
    // The profile refuses these; a second guard costs nothing.
    if (name.empty() || name.rfind("SESSIOND_", 0) == 0) continue;
    add(name, std::getenv(name.c_str()));
  }
  return env;
}

std::vector<std::string> session_secrets(const nlohmann::json& session,
                                         const nlohmann::json::json_pointer& state) {
  std::vector<std::string> out;
  add_document_secrets(out, session);
  // A nested storage state (a profile's state_pointer): its cookies too.
  if (const auto* st = storage_state_of(session, state); st && st != &session)
    add_document_secrets(out, *st);
  sort_secrets(out);
  return out;
}

std::string redact_secrets(std::string text, const std::vector<std::string>& secrets,
                           bool cut_at_start) {
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (auto pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos + std::strlen(kRedacted)))
      text.replace(pos, secret.size(), kRedacted);
  }
  if (!cut_at_start) return text;
  // A tail cut inside a secret starts with that secret's end: the longest
  // such end goes too.
  std::size_t cut = 0;
  for (const auto& secret : secrets)
    if (!secret.empty())
      for (std::size_t n = std::min(secret.size() - 1, text.size()); n > cut; --n)
        if (text.compare(0, n, secret, secret.size() - n, n) == 0) {
          cut = n;
          break;
        }
  if (cut > 0) text.replace(0, cut, kRedacted);
  return text;
}

ExecOutcome run_exec_job(const ExecJob& job) {
  ExecOutcome out;
  std::error_code ec;
  auto tmp_root = std::filesystem::temp_directory_path(ec);
  std::string dir_template =
      (ec ? std::string("/tmp") : tmp_root.string()) + "/sessiond-exec-XXXXXX";
  std::vector<char> buf(dir_template.begin(), dir_template.end());
  buf.push_back('\0');
  // A private directory (0700): the copy holds live cookies.
  if (!::mkdtemp(buf.data())) {
    out.copy_error =
        FileError{FileErrorKind::write, std::string("mkdtemp: ") + std::strerror(errno)};
    return out;
  }
  std::string dir(buf.data());
  std::string file = session_path(dir, job.session_id);
  auto written = write_file_atomic(file, serialize_session(job.session));
  if (auto* err = std::get_if<FileError>(&written)) {
    out.copy_error = *err;
  } else {
    TemplateContext ctx{job.session_id, job.session, job.base_url,
                        file,           nullptr,     &job.state_pointer};
    std::vector<std::string> argv;
    argv.reserve(job.argv.size());
    for (const auto& a : job.argv) argv.push_back(expand_template(a, ctx));
    ProcessOptions options;
    options.env = exec_environment(job.env, dir);
    out.process = run_process(argv, job.timeout, options);
    auto reread = load_session_file(file, kMaxSessionFileBytes, job.state_pointer);
    if (auto* loaded = std::get_if<LoadedSession>(&reread))
      out.updated = std::move(*loaded);
    else
      out.copy_error = std::get<FileError>(reread);
    // The command may print the cookies it was given or the ones it got.
    auto secrets = session_secrets(job.session, job.state_pointer);
    if (out.updated) {
      auto more = session_secrets(out.updated->doc, job.state_pointer);
      secrets.insert(secrets.end(), more.begin(), more.end());
      sort_secrets(secrets);
    }
    auto& pr = out.process;
    const bool out_cut = pr.stdout_tail.size() >= kStdoutTailBytes;
    const bool err_cut = pr.stderr_tail.size() >= kStderrTailBytes;
    pr.stdout_tail = redact_secrets(std::move(pr.stdout_tail), secrets, out_cut);
    pr.stderr_tail = redact_secrets(std::move(pr.stderr_tail), secrets, err_cut);
  }
  std::filesystem::remove_all(dir, ec);
  return out;
}

ExecVerdict exec_verdict(const ExecOutcome& outcome) {
  const auto& pr = outcome.process;
  // Before the process checks: a copy that could not even be written means the
  // command never ran (process.started stays false, its error is empty).
  if (!pr.started && outcome.copy_error)
    return {Verdict::transient, "command did not start: " + outcome.copy_error->message};
  if (!pr.started) return {Verdict::transient, "command did not start: " + pr.error};
  if (pr.timed_out) return {Verdict::transient, "command timed out"};
  if (pr.signal != 0)
    return {Verdict::transient, "command killed by signal " + std::to_string(pr.signal)};
  if (pr.exit_code == 3) return {Verdict::logged_out, "command exit status 3"};
  if (pr.exit_code != 0)
    return {Verdict::transient, "command exit status " + std::to_string(pr.exit_code)};
  if (!outcome.updated)
    return {Verdict::transient,
            "command left an unusable session copy: " +
                (outcome.copy_error ? outcome.copy_error->message : std::string())};
  return {Verdict::logged_in, "exit status 0"};
}

std::string exec_code_label(const ProcessResult& process) {
  return process.started && !process.timed_out && process.signal == 0
             ? "exec_" + std::to_string(process.exit_code)
             : std::string("exec_error");
}

}  // namespace sessiond
