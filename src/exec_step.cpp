#include "sessiond/exec_step.hpp"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <variant>

namespace sessiond {

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
    TemplateContext ctx{job.session_id, job.session, job.base_url, file};
    std::vector<std::string> argv;
    argv.reserve(job.argv.size());
    for (const auto& a : job.argv) argv.push_back(expand_template(a, ctx));
    out.process = run_process(argv, job.timeout);
    auto reread = load_session_file(file);
    if (auto* loaded = std::get_if<LoadedSession>(&reread))
      out.updated = std::move(*loaded);
    else
      out.copy_error = std::get<FileError>(reread);
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
