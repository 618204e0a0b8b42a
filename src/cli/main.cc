// The `layer` command: subcommands over liblayer.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/client_commands.h"
#include "cli/origin.h"
#include "cli/serve.h"
#include "common/config.h"
#include "common/malloc_cache.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"Layer: a caching gateway for Turbopuffer", "layer"};
  app.set_version_flag("--version", layer::kVersion);
  app.require_subcommand(1);

  layer::ServeConfig serve_cfg;
  auto* serve = app.add_subcommand("serve", "run the gateway");
  layer::AddServeFlags(*serve, serve_cfg);

  layer::OriginConfig origin_cfg;
  auto* origin = app.add_subcommand("origin", "run the local Turbopuffer-compatible server");
  layer::AddOriginFlags(*origin, origin_cfg);

  layer::cli::ClientCommands client_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;  // a usage error (the client commands document their exit codes)
  }
  if (int code = client_commands.RunParsed(); code >= 0) return code;

  if (serve->parsed()) {
    if (layer::Status st = serve_cfg.Validate(); !st.ok()) {
      std::fprintf(stderr, "layer serve: invalid configuration: %s\n", st.message().c_str());
      return 2;
    }
    layer::RestartWithMallocCache(argv);  // once, before anything starts (common/malloc_cache.h)
    return layer::cli::RunServe(serve_cfg);
  }
  if (origin->parsed()) {
    if (layer::Status st = origin_cfg.Validate(); !st.ok()) {
      std::fprintf(stderr, "layer origin: invalid configuration: %s\n", st.message().c_str());
      return 2;
    }
    layer::RestartWithMallocCache(argv);
    return layer::cli::RunOrigin(origin_cfg);
  }
  return 0;
}
