// `tributary bus …` (bus_cli.h): the management of the message bus from the command line. The
// properties and the JSON printed are those of the HTTP management API (server/bus_admin.h).

#include "bus_cli.h"

#include "cli_status.h"
#include "data_lock.h"

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/bus/broker.h"
#include "tributary/server/bus_admin.h"

namespace tributary::app {

namespace {

using bus::EntityKind;

// The broker's own errors for unknown or existing entities and bad requests are the caller's to
// fix (2), whatever their Status code.
int BusReport(const Status& s) {
  switch (s.error_code()) {
    case bus::errc::kEntityNotFound:
    case bus::errc::kEntityExists:
    case bus::errc::kBadRequest:
      return app::Report(s, 2);
    default:
      return app::Report(s, ExitCode(s));
  }
}

const char* KindName(EntityKind k) {
  return k == EntityKind::kQueue ? "queue" : k == EntityKind::kTopic ? "topic" : "subscription";
}

}  // namespace

struct BusCommands::State {
  OptionsFn options;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;

  // Option values (each parse sets those of one command).
  std::string data_dir, name, topic, path, file, properties, sql, lock_duration, ttl, duplicate_window, forward_to;
  int64_t max_delivery_count = -1;
  bool requires_session = false, dead_letter_on_expiration = false, json = false;

  // The open environment and broker of one command, under the data folder's lock (a running
  // server keeps the bus in memory and would not see the command's changes).
  struct Open {
    std::optional<DataLock> lock;
    std::unique_ptr<data::Environment> env;
    std::unique_ptr<bus::Broker> broker;
    ~Open() {
      if (broker) broker->Shutdown();
      broker.reset();
      if (env) env->Shutdown();
    }
  };

  Status OpenBus(Open& o) {
    auto lock = DataLock::Acquire(data_dir);
    if (!lock.ok()) return lock.status();
    o.lock.emplace(std::move(lock).value());
    data::EnvironmentOptions eo = options(data_dir);
    eo.read_connections = 2;
    auto env = data::Environment::Open(eo);
    if (!env.ok())
      return Status(env.status().code(), "cannot open the environment in " + data_dir + ": " + env.status().message());
    if ((*env)->created()) std::fprintf(stderr, "created a new environment in %s\n", data_dir.c_str());
    o.env = std::move(env).value();
    auto broker = bus::Broker::Open(o.env->engine(), o.env->clock());
    if (!broker.ok())
      return Status(broker.status().code(), "cannot open the message bus: " + broker.status().message());
    o.broker = std::move(broker).value();
    return {};
  }

  // The entity properties named by the options, over the defaults.
  Result<bus::EntityProperties> Properties(EntityKind kind) {
    std::vector<Json::Member> m;
    if (!lock_duration.empty()) m.emplace_back("lockDuration", Json::MakeString(lock_duration));
    if (max_delivery_count >= 0) m.emplace_back("maxDeliveryCount", Json::MakeInt(max_delivery_count));
    if (requires_session) m.emplace_back("requiresSession", Json::MakeBool(true));
    if (!ttl.empty()) m.emplace_back("defaultMessageTimeToLive", Json::MakeString(ttl));
    if (dead_letter_on_expiration) m.emplace_back("deadLetteringOnMessageExpiration", Json::MakeBool(true));
    if (!duplicate_window.empty()) {
      m.emplace_back("requiresDuplicateDetection", Json::MakeBool(true));
      m.emplace_back("duplicateDetectionHistoryTimeWindow", Json::MakeString(duplicate_window));
    }
    if (!forward_to.empty()) m.emplace_back("forwardTo", Json::MakeString(forward_to));
    bus::EntityProperties p;
    RETURN_IF_ERROR(server::ReadEntityProperties(Json::MakeObject(std::move(m)), kind, p));
    if (!properties.empty()) {
      auto j = ParseJson(properties);
      if (!j.ok()) return InvalidArgument("--properties is not valid JSON: " + j.status().message());
      RETURN_IF_ERROR(server::ReadEntityProperties(*j, kind, p));
    }
    return p;
  }

  int PrintEntity(bus::Broker& b, const std::string& entity_path) {
    auto e = b.GetEntity(entity_path);
    if (!e.ok()) return BusReport(e.status());
    std::string out = server::EntityJson(*e);
    if (e->kind == EntityKind::kSubscription) {
      auto rules = b.ListRules(entity_path);
      if (!rules.ok()) return BusReport(rules.status());
      auto parsed = ParseJson(*rules);
      std::string list;
      JsonWriter w(list);
      w.BeginArray();
      if (parsed.ok() && parsed->is_array())
        for (const Json& r : parsed->as_array()) server::WriteRule(w, r);
      w.EndArray();
      out.pop_back();  // '}'
      out += ",\"rules\":" + list + "}";
    }
    std::printf("%s\n", out.c_str());
    return 0;
  }

  int Create(EntityKind kind) {
    auto p = Properties(kind);
    if (!p.ok()) return BusReport(p.status());
    std::string rules;
    if (!sql.empty()) {
      if (kind != EntityKind::kSubscription) return BusReport(InvalidArgument("--sql applies to subscriptions"));
      std::vector<Json::Member> filter;
      filter.emplace_back("sqlExpression", Json::MakeString(sql));
      std::vector<Json::Member> rule;
      rule.emplace_back("filter", Json::MakeObject(std::move(filter)));
      auto r = server::RuleForBroker("$Default", Json::MakeObject(std::move(rule)));
      if (!r.ok()) return BusReport(r.status());
      rules = "[" + *r + "]";
    }
    Open o;
    if (Status s = OpenBus(o); !s.ok()) return BusReport(s);
    Status s = kind == EntityKind::kQueue   ? o.broker->CreateQueue(name, *p)
               : kind == EntityKind::kTopic ? o.broker->CreateTopic(name, *p)
                                            : o.broker->CreateSubscription(topic, name, *p, rules);
    if (!s.ok()) return BusReport(s);
    return PrintEntity(*o.broker, kind == EntityKind::kSubscription ? topic + "/Subscriptions/" + name : name);
  }

  int Delete() {
    Open o;
    if (Status s = OpenBus(o); !s.ok()) return BusReport(s);
    if (Status s = o.broker->DeleteEntity(path); !s.ok()) return BusReport(s);
    std::printf("deleted %s\n", path.c_str());
    return 0;
  }

  int List() {
    Open o;
    if (Status s = OpenBus(o); !s.ok()) return BusReport(s);
    auto all = o.broker->ListEntities();
    if (json) {
      std::string out;
      JsonWriter w(out);
      w.BeginObject();
      for (EntityKind k : {EntityKind::kQueue, EntityKind::kTopic, EntityKind::kSubscription}) {
        w.Key(k == EntityKind::kQueue ? "queues" : k == EntityKind::kTopic ? "topics" : "subscriptions");
        w.BeginArray();
        for (const auto& e : all)
          if (e.kind == k) server::WriteEntity(w, e);
        w.EndArray();
      }
      w.EndObject();
      std::printf("%s\n", out.c_str());
      return 0;
    }
    std::printf("%-13s %-40s %8s %8s %9s %8s\n", "KIND", "PATH", "ACTIVE", "DEAD", "SCHEDULED", "DEFERRED");
    for (const auto& e : all)
      std::printf("%-13s %-40s %8lld %8lld %9lld %8lld\n", KindName(e.kind), e.path.c_str(),
                  static_cast<long long>(e.runtime.active), static_cast<long long>(e.runtime.dead_lettered),
                  static_cast<long long>(e.runtime.scheduled), static_cast<long long>(e.runtime.deferred));
    return 0;
  }

  int Show() {
    Open o;
    if (Status s = OpenBus(o); !s.ok()) return BusReport(s);
    return PrintEntity(*o.broker, path);
  }

  int LoadConfig() {
    std::ifstream in(file);
    if (!in) return BusReport(InvalidArgument("cannot read " + file));
    std::stringstream ss;
    ss << in.rdbuf();
    Open o;
    if (Status s = OpenBus(o); !s.ok()) return BusReport(s);
    if (Status s = o.broker->LoadEmulatorConfig(ss.str()); !s.ok())
      return BusReport(Status(s.code(), file + ": " + s.message(), s.error_code()));
    auto all = o.broker->ListEntities();
    size_t n[3] = {0, 0, 0};
    for (const auto& e : all) ++n[static_cast<int>(e.kind)];
    std::printf("loaded %s: %zu queue(s), %zu topic(s), %zu subscription(s) in the bus\n", file.c_str(), n[0], n[1],
                n[2]);
    return 0;
  }
};

BusCommands::BusCommands(CLI::App& app, OptionsFn options) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.options = std::move(options);
  CLI::App* bus = app.add_subcommand("bus", "Manage the message bus: queues, topics, subscriptions");
  bus->require_subcommand(1);
  auto command = [&s, bus](const char* name, const char* what, std::function<int()> run) {
    CLI::App* c = bus->add_subcommand(name, what);
    c->add_option("--data", s.data_dir, "Data folder")->required();
    s.commands.emplace_back(c, std::move(run));
    return c;
  };
  auto entity_options = [&s](CLI::App* c, EntityKind kind) {
    if (kind != EntityKind::kTopic) {
      c->add_option("--lock-duration", s.lock_duration, "ISO 8601 duration (default PT1M)");
      c->add_option("--max-delivery-count", s.max_delivery_count, "Deliveries before dead-lettering (default 10)");
      c->add_flag("--requires-session", s.requires_session, "Messages need a session id; receivers accept sessions");
      c->add_flag("--dead-letter-on-expiration", s.dead_letter_on_expiration, "Dead-letter expired messages");
      c->add_option("--forward-to", s.forward_to, "Forward every message to this queue or topic");
    }
    if (kind != EntityKind::kSubscription)
      c->add_option("--duplicate-detection", s.duplicate_window,
                    "Turn on duplicate detection with this window (ISO 8601, e.g. PT10M)");
    c->add_option("--ttl", s.ttl, "Default message time to live (ISO 8601)");
    c->add_option("--properties", s.properties,
                  "Properties as the management API's JSON, e.g. '{\"maxDeliveryCount\":3}'");
  };
  CLI::App* c = command("create-queue", "Create a queue", [&s] { return s.Create(EntityKind::kQueue); });
  c->add_option("name", s.name, "Queue name (may contain '/')")->required();
  entity_options(c, EntityKind::kQueue);
  c = command("create-topic", "Create a topic", [&s] { return s.Create(EntityKind::kTopic); });
  c->add_option("name", s.name, "Topic name")->required();
  entity_options(c, EntityKind::kTopic);
  c = command("create-subscription", "Create a subscription of a topic",
              [&s] { return s.Create(EntityKind::kSubscription); });
  c->add_option("topic", s.topic, "Topic name")->required();
  c->add_option("name", s.name, "Subscription name")->required();
  c->add_option("--sql", s.sql, "SQL filter of the $Default rule (default: every message)");
  entity_options(c, EntityKind::kSubscription);
  c = command("delete", "Delete a queue, topic (with its subscriptions) or subscription", [&s] { return s.Delete(); });
  c->add_option("path", s.path, "Entity path: queue, topic or TOPIC/Subscriptions/NAME")->required();
  c = command("list", "List the entities with their message counts", [&s] { return s.List(); });
  c->add_flag("--json", s.json, "JSON output");
  c = command("show", "Show an entity's properties and counts as JSON (a subscription with its rules)",
              [&s] { return s.Show(); });
  c->add_option("path", s.path, "Entity path: queue, topic or TOPIC/Subscriptions/NAME")->required();
  c = command("load-config", "Create the entities of a Service Bus emulator Config.json (existing ones are kept)",
              [&s] { return s.LoadConfig(); });
  c->add_option("file", s.file, "Config.json")->required();
}

BusCommands::~BusCommands() = default;

std::optional<int> BusCommands::Run() {
  for (const auto& [app, run] : s_->commands)
    if (app->parsed()) return run();
  return std::nullopt;
}

}  // namespace tributary::app
