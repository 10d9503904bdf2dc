#pragma once
// `tributary user …` and `tributary role …`: administration of users, application users (OAuth
// client credentials) and security roles on a data folder, with the server stopped or running on
// it (a running server sees the changes within security::SecurityCache::kMaxAgeSeconds).
//
// Exit codes: 0 success; 2 bad arguments or an unknown user, role, privilege, business unit or
// client id (message on stderr); 1 any other failure.

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tributary/data/environment.h"

namespace tributary::app {

class AdminCommands {
 public:
  // The options to open a data folder with (bootstrap credentials from the environment).
  using OptionsFn = std::function<data::EnvironmentOptions(const std::string& data_dir)>;

  // Adds the `user` and `role` subcommands to `app`, which must outlive this object.
  AdminCommands(CLI::App& app, OptionsFn options);
  ~AdminCommands();

  // After app.parse(): runs the admin command that was parsed and returns its exit code;
  // nullopt when the command line named no admin command.
  std::optional<int> Run();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace tributary::app
