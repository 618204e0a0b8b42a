// The `layer` command line's client commands, on the C++ client (clients/cpp):
//   layer warm NS [--page-size N] [--follow]   start (or join) a warm job; --follow shows it to the end
//   layer jobs NS                              the namespace's warm jobs
//   layer job NS ID [--cancel]                 one warm job (cancelled with --cancel)
//   layer fetch NS ID...                       documents by id
//   layer hint NS [--turbopuffer=B] [--documents=B] [--snapshots=B] [--page-size N]
//   layer snapshot NS [--policy | --set-policy JSON | --sha SHA]   history, policy or a body
//   layer status                               the gateway's health and cache state
// Every command takes --url (default $LAYER_GATEWAY_URL, else http://127.0.0.1:8080) and
// --api-key (default $LAYER_GATEWAY_API_KEY). On a terminal `warm --follow` draws a progress bar
// (percent, documents/s, elapsed, ETA, final state) and lists print as tables; when stdout is not
// a terminal every answer is printed as JSON, one object per line.
//
// Exit codes: 0 success; 1 the gateway answered with an error (its message is printed) or a
// followed job ended failed or cancelled; 2 a usage error; 3 the gateway could not be reached.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace layer::cli {

class ClientCommands {
 public:
  // Registers the commands on `app`.
  explicit ClientCommands(CLI::App& app);
  ~ClientCommands();
  // Runs the command that was parsed, if any: its exit code, or -1 when none of them was.
  int RunParsed();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace layer::cli
