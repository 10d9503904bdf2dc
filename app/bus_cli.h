#pragma once
// `tributary bus …`: management of the message bus's queues, topics and subscriptions on a data
// folder, with the server stopped (a running server keeps its entities in memory and does not
// see the changes; use the HTTP management API, /servicebus/$management/…, while it runs).
//
//   bus create-queue NAME | create-topic NAME | create-subscription TOPIC NAME
//   bus delete PATH | list | show PATH | load-config FILE            (all with --data DIR)
//
// Exit codes: 0 success; 2 bad arguments, an unknown or existing entity, an invalid property or
// rule, a data folder in use by a running server (message on stderr); 1 any other failure.

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tributary/data/environment.h"

namespace tributary::app {

class BusCommands {
 public:
  using OptionsFn = std::function<data::EnvironmentOptions(const std::string& data_dir)>;

  // Adds the `bus` subcommand to `app`, which must outlive this object.
  BusCommands(CLI::App& app, OptionsFn options);
  ~BusCommands();

  // After app.parse(): runs the bus command that was parsed and returns its exit code; nullopt
  // when the command line named no bus command.
  std::optional<int> Run();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace tributary::app
