#include "cli/client_commands.h"

#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hevlayer/client.h"

namespace layer::cli {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr int kOk = 0, kAnswerError = 1, kUsage = 2, kUnreachable = 3;

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

bool Terminal() { return isatty(STDOUT_FILENO) == 1; }

void PrintJson(const json::value& v) { std::printf("%s\n", json::serialize(v).c_str()); }

// The exit code of a failed answer, after printing what went wrong.
int Failed(const hevlayer::Response& r) {
  if (r.transport_failure()) {
    std::fprintf(stderr, "layer: %s\n", r.error.message.c_str());
    return kUnreachable;
  }
  std::fprintf(stderr, "layer: %d %s: %s\n", r.status, r.error.kind.c_str(),
               r.error.message.c_str());
  return kAnswerError;
}

std::string Clock(double seconds) {
  if (seconds < 0 || seconds > 359999) return "--:--";
  const long s = static_cast<long>(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

double Number(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  return v && v->is_number() ? v->to_number<double>() : 0.0;
}

std::string Text(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// One line of the progress bar, redrawn in place.
void DrawProgress(const json::object& job, double elapsed) {
  const double progress = Number(job, "progress");
  const double scanned = Number(job, "documents_scanned");
  const int width = 30;
  const int filled = static_cast<int>(progress * width + 0.5);
  std::string bar(filled, '#');
  bar.resize(width, '-');
  const double rate = elapsed > 0 ? scanned / elapsed : 0;
  const double eta = progress > 0 && progress < 1 ? elapsed * (1 - progress) / progress : -1;
  std::printf("\r%s [%s] %5.1f%%  %.0f docs  %.0f docs/s  elapsed %s  ETA %s\033[K",
              Text(job, "namespace").c_str(), bar.c_str(), progress * 100, scanned, rate,
              Clock(elapsed).c_str(), progress >= 1 ? "0:00" : Clock(eta).c_str());
  std::fflush(stdout);
}

}  // namespace

struct ClientCommands::State {
  std::string url = Env("LAYER_GATEWAY_URL", "http://127.0.0.1:8080");
  std::string api_key = Env("LAYER_GATEWAY_API_KEY", "");
  std::string ns, job_id, sha, set_policy;
  std::vector<std::string> ids;
  std::optional<int> page_size;
  std::optional<bool> turbopuffer, documents, snapshots;
  bool follow = false, cancel = false, policy = false;
  CLI::App *warm, *jobs, *job, *fetch, *hint, *snapshot, *status;

  hevlayer::Client Client() const {
    hevlayer::Options o;
    o.base_url = url;
    o.api_key = api_key;
    return hevlayer::Client(o);
  }

  int Warm();
  int Jobs();
  int Job();
  int Fetch();
  int Hint();
  int Snapshot();
  int Status();
};

ClientCommands::ClientCommands(CLI::App& app) : state_(std::make_unique<State>()) {
  State& s = *state_;
  auto common = [&s](CLI::App* cmd) {
    cmd->add_option("--url", s.url, "gateway URL ($LAYER_GATEWAY_URL)");
    cmd->add_option("--api-key", s.api_key, "gateway API key ($LAYER_GATEWAY_API_KEY)");
    return cmd;
  };
  s.warm = common(app.add_subcommand("warm", "start a warm job of a namespace"));
  s.warm->add_option("namespace", s.ns)->required();
  s.warm->add_option("--page-size", s.page_size, "documents per page (1..10000)");
  s.warm->add_flag("--follow", s.follow, "show the job's progress until it ends");

  s.jobs = common(app.add_subcommand("jobs", "list a namespace's warm jobs"));
  s.jobs->add_option("namespace", s.ns)->required();

  s.job = common(app.add_subcommand("job", "show (or cancel) one warm job"));
  s.job->add_option("namespace", s.ns)->required();
  s.job->add_option("id", s.job_id)->required();
  s.job->add_flag("--cancel", s.cancel, "cancel the job");

  s.fetch = common(app.add_subcommand("fetch", "fetch documents by id"));
  s.fetch->add_option("namespace", s.ns)->required();
  s.fetch->add_option("ids", s.ids)->required();

  s.hint = common(app.add_subcommand("hint", "send hint_cache_warm (orchestrated with options)"));
  s.hint->add_option("namespace", s.ns)->required();
  s.hint->add_option("--turbopuffer", s.turbopuffer, "forward the hint upstream (true|false)");
  s.hint->add_option("--documents", s.documents, "start a warm job (true|false)");
  s.hint->add_option("--snapshots", s.snapshots, "mirror the latest snapshot (true|false)");
  s.hint->add_option("--page-size", s.page_size, "the warm job's page size");

  s.snapshot = common(app.add_subcommand("snapshot", "a namespace's snapshot history, policy or body"));
  s.snapshot->add_option("namespace", s.ns)->required();
  s.snapshot->add_flag("--policy", s.policy, "show the snapshot policy");
  s.snapshot->add_option("--set-policy", s.set_policy, "store a policy (JSON)");
  s.snapshot->add_option("--sha", s.sha, "show the snapshot with this sha (7+ hex digits)");

  s.status = common(app.add_subcommand("status", "the gateway's health and cache state"));
}

ClientCommands::~ClientCommands() = default;

int ClientCommands::RunParsed() {
  State& s = *state_;
  if (s.warm->parsed()) return s.Warm();
  if (s.jobs->parsed()) return s.Jobs();
  if (s.job->parsed()) return s.Job();
  if (s.fetch->parsed()) return s.Fetch();
  if (s.hint->parsed()) return s.Hint();
  if (s.snapshot->parsed()) return s.Snapshot();
  if (s.status->parsed()) return s.Status();
  return -1;
}

int ClientCommands::State::Warm() {
  hevlayer::Client client = Client();
  const auto started = std::chrono::steady_clock::now();
  hevlayer::Response r = client.WarmCache(ns, page_size);
  if (!r.ok()) return Failed(r);
  if (!follow) {
    PrintJson(r.json);
    return kOk;
  }
  const bool tty = Terminal();
  std::string id = Text(r.json.as_object(), "id");
  json::object job = r.json.as_object();
  auto delay = 100ms;
  for (;;) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (tty) {
      DrawProgress(job, elapsed);
    } else {
      PrintJson(job);
      std::fflush(stdout);
    }
    const std::string state = Text(job, "status");
    if (state != "running") {
      if (tty) {
        std::printf("\n%s: warm job %s %s: %.0f documents in %s%s%s\n", ns.c_str(), id.c_str(),
                    state.c_str(), Number(job, "documents_scanned"), Clock(elapsed).c_str(),
                    job.contains("error") ? " -- " : "", Text(job, "error").c_str());
      }
      return state == "completed" ? kOk : kAnswerError;
    }
    std::this_thread::sleep_for(delay);
    delay = std::min<std::chrono::milliseconds>(delay * 2, 1000ms);
    hevlayer::Response poll = client.GetWarmJob(ns, id);
    if (!poll.ok()) {
      if (tty) std::printf("\n");
      return Failed(poll);
    }
    job = poll.json.as_object();
  }
}

int ClientCommands::State::Jobs() {
  hevlayer::Response r = Client().ListWarmJobs(ns);
  if (!r.ok()) return Failed(r);
  const json::value* list = r.json.is_object() ? r.json.as_object().if_contains("warm_jobs") : nullptr;
  if (!list || !list->is_array()) return Failed(r);
  if (!Terminal()) {
    for (const auto& j : list->as_array()) PrintJson(j);
    return kOk;
  }
  std::printf("%-36s  %-9s  %6s  %10s  %s\n", "ID", "STATUS", "PROG", "DOCUMENTS", "CREATED");
  for (const auto& jv : list->as_array()) {
    const json::object& j = jv.as_object();
    std::printf("%-36s  %-9s  %5.1f%%  %10.0f  %s\n", Text(j, "id").c_str(),
                Text(j, "status").c_str(), Number(j, "progress") * 100,
                Number(j, "documents_scanned"), Text(j, "created_at").c_str());
  }
  return kOk;
}

int ClientCommands::State::Job() {
  hevlayer::Client client = Client();
  hevlayer::Response r = cancel ? client.CancelWarmJob(ns, job_id) : client.GetWarmJob(ns, job_id);
  if (!r.ok()) return Failed(r);
  PrintJson(r.json);
  return kOk;
}

int ClientCommands::State::Fetch() {
  hevlayer::Client client = Client();
  if (ids.size() == 1) {
    hevlayer::Response r = client.FetchDocument(ns, ids[0]);
    if (!r.ok()) return Failed(r);
    PrintJson(r.json);
    return kOk;
  }
  json::array list;
  for (const auto& id : ids) {
    // Numeric ids as numbers, as Turbopuffer's u64 ids are.
    char* end = nullptr;
    unsigned long long n = std::strtoull(id.c_str(), &end, 10);
    if (!id.empty() && *end == '\0' && id[0] != '-') {
      list.emplace_back(static_cast<uint64_t>(n));
    } else {
      list.emplace_back(id);
    }
  }
  hevlayer::Response r = client.FetchDocuments(ns, list);
  if (!r.ok()) return Failed(r);
  PrintJson(r.json);
  return kOk;
}

int ClientCommands::State::Hint() {
  hevlayer::Response r = Client().HintCacheWarm(ns, turbopuffer, documents, snapshots, page_size);
  if (!r.ok()) return Failed(r);
  if (r.json.is_null()) {
    std::printf("%s\n", r.body.c_str());
  } else {
    PrintJson(r.json);
  }
  return kOk;
}

int ClientCommands::State::Snapshot() {
  hevlayer::Client client = Client();
  hevlayer::Response r;
  if (!set_policy.empty()) {
    boost::system::error_code ec;
    json::value policy = json::parse(set_policy, ec);
    if (ec || !policy.is_object()) {
      std::fprintf(stderr, "layer snapshot: --set-policy needs a JSON object\n");
      return kUsage;
    }
    r = client.PutSnapshotPolicy(ns, policy.as_object());
  } else if (policy) {
    r = client.GetSnapshotPolicy(ns);
  } else if (!sha.empty()) {
    r = client.GetSnapshot(ns, sha);
  } else {
    r = client.GetHistory(ns);
  }
  if (!r.ok()) return Failed(r);
  if (r.json.is_array() && !Terminal()) {
    for (const auto& e : r.json.as_array()) PrintJson(e);
  } else if (r.json.is_array()) {
    std::printf("%-15s  %s\n", "WATERMARK_MS", "SHA");
    for (const auto& e : r.json.as_array()) {
      std::printf("%-15.0f  %s\n", Number(e.as_object(), "watermark_ms"),
                  Text(e.as_object(), "sha").c_str());
    }
  } else {
    PrintJson(r.json);
  }
  return kOk;
}

int ClientCommands::State::Status() {
  hevlayer::Response r = Client().Health();
  if (!r.ok()) return Failed(r);
  if (!Terminal() || !r.json.is_object()) {
    PrintJson(r.json);
    return kOk;
  }
  const json::object& h = r.json.as_object();
  std::printf("gateway %s (version %s)\n", Text(h, "status").c_str(), Text(h, "version").c_str());
  if (const auto* up = h.if_contains("upstream"); up && up->is_object()) {
    std::printf("upstream %s %s\n", Text(up->as_object(), "kind").c_str(),
                Text(up->as_object(), "url").c_str());
  }
  if (const auto* c = h.if_contains("cache"); c && c->is_object()) {
    std::printf("cache %s\n", json::serialize(*c).c_str());
  }
  if (const auto* states = h.if_contains("cache_state"); states && states->is_array()) {
    for (const auto& e : states->as_array()) {
      if (!e.is_object()) continue;
      std::printf("  %-32s %s\n", Text(e.as_object(), "namespace").c_str(),
                  Text(e.as_object(), "state").c_str());
    }
  }
  return kOk;
}

}  // namespace layer::cli
