// The generated authorization matrix (platform.md §2.1–§2.6). A small organization (root → A → A1,
// and B beside A; users in each; owner teams, an access team, default teams) owns accounts and
// contacts, some of them shared. For every access level × record-level privilege × holder (the
// subject user directly, or an owner team in another business unit that the subject belongs to),
// a role gets that privilege at that level — plus the privileges the operation depends on, at
// Organization level, so the tested privilege alone decides — and every operation is run against
// every record. The expected outcome comes from Model below: an independent statement of the
// rules, not a call into the code under test. Writes run in a transaction that is then failed on
// purpose, so every case sees the same data.

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <set>

#include "access.h"

#include "tributary/base/time.h"
#include "tributary/data/environment.h"
#include "tributary/data/fetch_exec.h"
#include "tributary/data/fetchxml.h"

namespace tributary::data {
namespace {

namespace fs = std::filesystem;
using security::Depth;
using security::Verb;

constexpr std::string_view kRollback = "security matrix: undo this case";
constexpr std::array<Depth, 5> kDepths = {Depth::kNone, Depth::kBasic, Depth::kLocal, Depth::kDeep, Depth::kGlobal};

enum class Holder { kUser, kTeam };
const char* HolderName(Holder h) { return h == Holder::kUser ? "direct" : "team"; }

// One privilege of a role.
struct Grant {
  std::string table;  // logical name
  Verb verb;
  Depth depth;
};

// The organization as the rules see it, and the rules themselves.
struct Model {
  struct Team {
    Guid bu;
    int type = 0;  // 0 owner, 1 access
    bool is_default = false;
    std::set<Guid> members;  // explicit members (a default team's members are its BU's users)
  };
  struct Record {
    std::string table;
    Guid id;
    Guid owner;
    std::string label;
  };
  struct Share {
    Guid record;
    Guid principal;
    uint32_t mask;
  };
  std::map<Guid, Guid> parent;  // business unit → parent; the root has none
  std::map<Guid, Guid> user_bu;
  std::map<Guid, Team> teams;
  std::vector<Record> records;
  std::vector<Share> shares;
  // The roles in play: those held by a user directly and those held by a team.
  std::map<Guid, std::vector<Grant>> user_grants, team_grants;

  std::set<Guid> TeamsOf(const Guid& user) const {
    std::set<Guid> out;
    for (const auto& [id, t] : teams)
      if (t.members.count(user) || (t.is_default && t.bu == user_bu.at(user))) out.insert(id);
    return out;
  }
  Guid BusinessUnitOf(const Guid& owner) const {
    if (auto it = user_bu.find(owner); it != user_bu.end()) return it->second;
    return teams.at(owner).bu;
  }
  // Whether `bu` is `anchor` or below it.
  bool Within(Guid bu, const Guid& anchor) const {
    for (int guard = 0; guard < 100; ++guard) {
      if (bu == anchor) return true;
      auto it = parent.find(bu);
      if (it == parent.end()) return false;
      bu = it->second;
    }
    return false;
  }

  // The grants of `table`/`verb` that reach `user`, each with the business unit its Local and Deep
  // levels count from: the user's own for direct roles, the team's for roles held through a team.
  // Access teams hold no roles.
  std::vector<std::pair<Depth, Guid>> Applicable(const Guid& user, const std::string& table, Verb verb) const {
    std::vector<std::pair<Depth, Guid>> out;
    auto take = [&](const std::vector<Grant>& grants, const Guid& anchor) {
      for (const auto& g : grants)
        if (g.table == table && g.verb == verb && g.depth != Depth::kNone) out.emplace_back(g.depth, anchor);
    };
    if (auto it = user_grants.find(user); it != user_grants.end()) take(it->second, user_bu.at(user));
    for (const Guid& t : TeamsOf(user)) {
      const Team& team = teams.at(t);
      if (team.type == 1) continue;
      if (auto it = team_grants.find(t); it != team_grants.end()) take(it->second, team.bu);
    }
    return out;
  }
  bool Held(const Guid& user, const std::string& table, Verb verb) const {
    return !Applicable(user, table, verb).empty();
  }
  // Whether `user` may do `verb` on a row of `table` owned by `owner` (`record`: the row, for its
  // shares; nullopt for a row being created). The privilege must be held; then ownership by the
  // user or one of their teams, the level of a grant, or a share with the right gives access.
  bool Reaches(const Guid& user, const std::string& table, Verb verb, const Guid& owner,
               std::optional<Guid> record) const {
    auto grants = Applicable(user, table, verb);
    if (grants.empty()) return false;
    std::set<Guid> principals = TeamsOf(user);
    principals.insert(user);
    if (principals.count(owner)) return true;
    const Guid owner_bu = BusinessUnitOf(owner);
    for (const auto& [depth, anchor] : grants) {
      if (depth == Depth::kGlobal) return true;
      if (depth == Depth::kLocal && owner_bu == anchor) return true;
      if (depth == Depth::kDeep && Within(owner_bu, anchor)) return true;
    }
    if (record)
      for (const auto& s : shares)
        if (s.record == *record && principals.count(s.principal) && (s.mask & security::RightOf(verb))) return true;
    return false;
  }
};

class SecurityMatrixTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("trib_secmatrix_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    clock_ = new ManualClock(Timestamp{1'700'000'000'000});
    auto env = Environment::Open({.data_dir = dir_->string(),
                                  .bootstrap_client_id = "test",
                                  .bootstrap_client_secret = "secret",
                                  .clock = clock_});
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(env).value().release();
    m_ = new Model();
    BuildOrganization();
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
    delete m_;
    delete clock_;
    fs::remove_all(*dir_);
    delete dir_;
  }

  // --- The organization ----------------------------------------------------------------------

  static CallerContext Platform() { return {env_->ids().admin_user_id, env_->ids().root_business_unit_id}; }
  static const catalog::Table& T(std::string_view name) { return *env_->catalog().Get()->FindTable(name); }

  static Guid MakeRecord(std::string_view table, std::vector<std::pair<const char*, Value>> values) {
    EntityInput in;
    in.table = &T(table);
    for (auto& [name, v] : values) {
      const catalog::Column* c = in.table->FindColumn(name);
      EXPECT_NE(c, nullptr) << table << "." << name;
      in.fields.push_back(Field{c, std::move(v)});
    }
    std::promise<Result<WriteResult>> p;
    env_->service().Create(Platform(), std::move(in), std::nullopt,
                           [&p](Result<WriteResult> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << table << ": " << r.status().ToString();
    return r.ok() ? r->id : Guid();
  }

  static void Link(std::string_view table, const Guid& id, std::string_view nav, std::string_view target,
                   const Guid& target_id) {
    const catalog::NavProperty* n = T(table).FindNav(nav);
    ASSERT_NE(n, nullptr) << nav;
    std::promise<Result<Guid>> p;
    env_->service().Associate(Platform(), T(table), RecordKey{id, {}}, *n,
                              BindTarget{&T(target), RecordKey{target_id, {}}}, true,
                              [&p](Result<Guid> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  static Guid BusinessUnit(const char* name, const Guid& parent) {
    Guid id = MakeRecord("businessunit",
                         {{"name", std::string(name)}, {"parentbusinessunitid", EntityRef{"businessunit", parent}}});
    m_->parent[id] = parent;
    return id;
  }

  static std::optional<Guid> DefaultTeamOf(const Guid& bu) {
    std::optional<Guid> team;
    auto r = env_->engine().Read();
    Status s = r->Query("SELECT teamid FROM team WHERE isdefault = 1 AND businessunitid = ?",
                        std::vector<storage::SqlValue>{bu.ToString()}, [&](const storage::Row& row) {
                          team = Guid::Parse(row.Text(0));
                          return false;
                        });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return team;
  }

  static Guid Team(const char* name, const Guid& bu, int type, std::vector<Guid> members) {
    Guid id = MakeRecord(
        "team",
        {{"name", std::string(name)}, {"teamtype", int64_t{type}}, {"businessunitid", EntityRef{"businessunit", bu}}});
    Model::Team& t = m_->teams[id];
    t.bu = bu;
    t.type = type;
    for (const Guid& u : members) {
      Link("systemuser", u, "teammembership_association", "team", id);
      t.members.insert(u);
    }
    return id;
  }

  static Guid User(const char* name, const Guid& bu) {
    Guid id = MakeRecord("systemuser", {{"firstname", std::string(name)},
                                        {"lastname", std::string("Matrix")},
                                        {"businessunitid", EntityRef{"businessunit", bu}}});
    m_->user_bu[id] = bu;
    return id;
  }

  static Guid Role(const char* name) {
    return MakeRecord("role", {{"name", std::string(name)},
                               {"businessunitid", EntityRef{"businessunit", env_->ids().root_business_unit_id}}});
  }

  static void AddRecord(const std::string& label, const Guid& owner,
                        std::vector<std::pair<Guid, uint32_t>> shares = {}) {
    for (const char* table : {"account", "contact"}) {
      const bool team = m_->teams.count(owner) > 0;
      EntityRef ref{team ? "team" : "systemuser", owner};
      std::string text = std::string(table) + " " + label;
      std::string stored = "r" + std::to_string(m_->records.size());
      Guid id = std::string_view(table) == "account" ? MakeRecord(table, {{"name", stored}, {"ownerid", ref}})
                                                     : MakeRecord(table, {{"lastname", stored}, {"ownerid", ref}});
      m_->records.push_back({table, id, owner, text});
      for (const auto& [principal, mask] : shares) {
        EntityRef who{m_->teams.count(principal) ? "team" : "systemuser", principal};
        std::promise<Status> p;
        env_->service().Transact(
            Platform(), [&](WriteScope& s) { return s.Share(T(table), id, who, mask, false); },
            [&p](Status s) { p.set_value(std::move(s)); });
        Status s = p.get_future().get();
        ASSERT_TRUE(s.ok()) << s.ToString();
        m_->shares.push_back({id, principal, mask});
      }
    }
  }

  static void BuildOrganization() {
    root_ = env_->ids().root_business_unit_id;
    a_ = BusinessUnit("A", root_);
    a1_ = BusinessUnit("A1", a_);
    b_ = BusinessUnit("B", root_);
    m_->user_bu[env_->ids().admin_user_id] = root_;
    // Every business unit has a default owner team whose members are the unit's users.
    for (const Guid& bu : {root_, a_, a1_, b_}) {
      std::optional<Guid> team = DefaultTeamOf(bu);
      if (!team && bu != root_) platform_lacks_default_teams_ = true;
      if (!team) {  // not made by the platform (see DefaultTeamPerBusinessUnit)
        team = MakeRecord("team", {{"name", std::string("default")},
                                   {"teamtype", int64_t{0}},
                                   {"isdefault", true},
                                   {"businessunitid", EntityRef{"businessunit", bu}}});
      }
      m_->teams[*team] = Model::Team{bu, 0, true, {}};
      default_team_[bu] = *team;
    }
    u_root_ = User("root", root_);
    u_a_ = User("a", a_);
    u_a2_ = User("a2", a_);
    u_a1_ = User("a1", a1_);
    u_b_ = User("b", b_);
    u_b2_ = User("b2", b_);
    // The owner team in A whose member from B holds the team-held roles; an owner team in B
    // with the direct subject as member; an access team in the root with both subjects.
    t_a_ = Team("team A", a_, 0, {u_b_});
    t_b_ = Team("team B", b_, 0, {u_a_});
    t_access_ = Team("access team", root_, 1, {u_a_, u_b_});
    role_user_ = Role("matrix direct");
    role_team_ = Role("matrix team");
    Link("systemuser", u_a_, "systemuserroles_association", "role", role_user_);
    Link("team", t_a_, "teamroles_association", "role", role_team_);

    using security::kAllAccessRights;
    AddRecord("owned by root user", u_root_);
    AddRecord("owned by a", u_a_);
    AddRecord("owned by a2", u_a2_);
    AddRecord("owned by a1", u_a1_);
    AddRecord("owned by b", u_b_);
    AddRecord("owned by b2", u_b2_);
    AddRecord("owned by team A", t_a_);
    AddRecord("owned by team B", t_b_);
    AddRecord("owned by A's default team", default_team_[a_]);
    AddRecord("owned by B's default team", default_team_[b_]);
    AddRecord("owned by A1's default team", default_team_[a1_]);
    AddRecord("shared with a (read, write, append)", u_root_,
              {{u_a_, security::kReadAccess | security::kWriteAccess | security::kAppendAccess}});
    AddRecord("shared with the access team (all)", u_b2_, {{t_access_, kAllAccessRights}});
    AddRecord("shared with team A (read, delete, append to, assign)", u_root_,
              {{t_a_, security::kReadAccess | security::kDeleteAccess | security::kAppendToAccess |
                          security::kAssignAccess}});
    AddRecord("shared with b (share, write)", u_a1_, {{u_b_, security::kShareAccess | security::kWriteAccess}});
    AddRecord("shared with B's default team (read, append to)", u_root_,
              {{default_team_[b_], security::kReadAccess | security::kAppendToAccess}});
    AddRecord("shared with a2 (all)", u_b2_, {{u_a2_, kAllAccessRights}});
    // The record other records are linked to in the Append/AppendTo cases.
    anchor_account_ =
        MakeRecord("account", {{"name", std::string("anchor")}, {"ownerid", EntityRef{"systemuser", u_root_}}});
    m_->records.push_back({"account", anchor_account_, u_root_, "anchor"});
  }

  // --- Cases ---------------------------------------------------------------------------------

  static Guid Subject(Holder h) { return h == Holder::kUser ? u_a_ : u_b_; }

  // Replaces the privileges of the two matrix roles: `grants` go to the holder's role, the
  // other role is emptied.
  static void SetGrants(Holder h, const std::vector<Grant>& grants) {
    const Guid role = h == Holder::kUser ? role_user_ : role_team_;
    Status s = env_->engine().WriteSync([&](storage::Connection& c) -> Status {
      RETURN_IF_ERROR(c.Exec("DELETE FROM roleprivileges WHERE roleid IN (?, ?)",
                             std::vector<storage::SqlValue>{role_user_.ToString(), role_team_.ToString()})
                          .status());
      for (const Grant& g : grants) {
        if (g.depth == Depth::kNone) continue;
        std::string name = security::PrivilegeName(g.verb, T(g.table).schema_name);
        std::vector<storage::SqlValue> p = {GuidGenerator::NewSequential().ToString(), role.ToString(),
                                            security::PrivilegeId(name).ToString(),
                                            int64_t{security::DepthMask(g.depth)}};
        RETURN_IF_ERROR(c.Exec("INSERT INTO roleprivileges (roleprivilegesid, roleid, privilegeid, "
                               "privilegedepthmask) VALUES (?, ?, ?, ?)",
                               p)
                            .status());
      }
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s.ToString();
    env_->security().Invalidate();
    m_->user_grants.clear();
    m_->team_grants.clear();
    if (h == Holder::kUser)
      m_->user_grants[u_a_] = grants;
    else
      m_->team_grants[t_a_] = grants;
  }

  // The tested privilege at `depth`; every other privilege of `table` and all of the other
  // record tables at Organization level.
  static std::vector<Grant> CaseGrants(const std::string& table, Verb verb, Depth depth) {
    std::vector<Grant> out;
    for (const char* t : {"account", "contact"})
      for (Verb v : security::kAllVerbs) out.push_back({t, v, t == table && v == verb ? depth : Depth::kGlobal});
    return out;
  }

  static CallerContext Resolve(Holder h) {
    auto c = env_->ResolveUser(Subject(h));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : CallerContext{};
  }

  // Runs `op` in a transaction that is undone afterwards; answers the operation's own status.
  static Status Undone(const CallerContext& caller, const std::function<Status(WriteScope&)>& op) {
    std::promise<Status> p;
    env_->service().Transact(
        caller,
        [&op](WriteScope& s) -> Status {
          Status st = op(s);
          return st.ok() ? Status(Code::kFailedPrecondition, std::string(kRollback)) : st;
        },
        [&p](Status s) { p.set_value(std::move(s)); });
    Status s = p.get_future().get();
    return s.message() == kRollback ? Status::Ok() : s;
  }

  // Checks an outcome against the model: success, or 403 with PrivilegeDenied when the privilege
  // is not held at all and the record access code otherwise.
  static void ExpectOutcome(const Status& s, bool held, bool reaches, const std::string& prv, const std::string& what) {
    if (held && reaches) {
      EXPECT_TRUE(s.ok()) << what << ": expected success, got " << s.ToString();
      return;
    }
    EXPECT_EQ(s.code(), Code::kPermissionDenied) << what << ": " << s.ToString();
    if (!held) {
      EXPECT_EQ(s.error_code(), err::kPrivilegeDenied) << what << ": " << s.ToString();
      EXPECT_NE(s.message().find(prv), std::string::npos)
          << what << ": the message should name " << prv << ": " << s.message();
    } else {
      EXPECT_EQ(s.error_code(), err::kRecordAccessDenied) << what << ": " << s.ToString();
    }
  }

  static std::string CaseName(const std::string& table, Verb verb, Depth depth, Holder h) {
    return std::string(security::VerbName(verb)) + "/" + std::string(security::DepthName(depth)) + "/" + HolderName(h) +
           "/" + table;
  }

  // Runs `check(caller, case name)` for every access level and holder of `verb` on both tables.
  static void ForEachCase(
      Verb verb,
      const std::function<void(const CallerContext&, Holder, const std::string&, Depth, const std::string&)>& check) {
    for (const char* table : {"account", "contact"})
      for (Holder h : {Holder::kUser, Holder::kTeam})
        for (Depth d : kDepths) {
          SetGrants(h, CaseGrants(table, verb, d));
          CallerContext caller = Resolve(h);
          ++cases_;
          check(caller, h, table, d, CaseName(table, verb, d, h));
        }
  }

  // For each record of `table`: runs `op` as the subject and compares with the model.
  // `except`: a record left out (the anchor, which is not linked to itself).
  static void PerRecord(const CallerContext& caller, Holder h, const std::string& table, Verb verb,
                        const std::string& name, const std::function<Status(WriteScope&, const Model::Record&)>& op,
                        const Guid& except = Guid()) {
    const Guid user = Subject(h);
    const std::string prv = security::PrivilegeName(verb, T(table).schema_name);
    for (const auto& r : m_->records) {
      if (r.table != table || r.id == except) continue;
      bool held = m_->Held(user, table, verb);
      bool reaches = m_->Reaches(user, table, verb, r.owner, r.id);
      Status s = Undone(caller, [&](WriteScope& scope) { return op(scope, r); });
      ExpectOutcome(s, held, reaches, prv, name + " on '" + r.label + "'");
      ++checks_;
    }
  }

  static std::set<Guid> ExpectedReadable(const Guid& user, const std::string& table) {
    std::set<Guid> out;
    for (const auto& r : m_->records)
      if (r.table == table && m_->Reaches(user, table, Verb::kRead, r.owner, r.id)) out.insert(r.id);
    return out;
  }

  static std::string Label(const Guid& id) {
    for (const auto& r : m_->records)
      if (r.id == id) return r.label;
    return id.ToString();
  }
  static std::string Labels(const std::set<Guid>& ids) {
    std::string s;
    for (const auto& id : ids) s += "\n  " + Label(id);
    return s;
  }

  static inline fs::path* dir_ = nullptr;
  static inline ManualClock* clock_ = nullptr;
  static inline Environment* env_ = nullptr;
  static inline Model* m_ = nullptr;
  static inline Guid root_, a_, a1_, b_;
  static inline std::map<Guid, Guid> default_team_;
  static inline Guid u_root_, u_a_, u_a2_, u_a1_, u_b_, u_b2_;
  static inline Guid t_a_, t_b_, t_access_;
  static inline Guid role_user_, role_team_;
  static inline Guid anchor_account_;
  static inline int cases_ = 0, checks_ = 0;
  static inline bool platform_lacks_default_teams_ = false;
};

// Creating a business unit creates its default team (platform.md §2.1).
TEST_F(SecurityMatrixTest, DefaultTeamPerBusinessUnit) {
  EXPECT_FALSE(platform_lacks_default_teams_) << "a new business unit got no default team";
}

TEST_F(SecurityMatrixTest, Read) {
  ForEachCase(Verb::kRead, [](const CallerContext& caller, Holder h, const std::string& table, Depth,
                              const std::string& name) {
    const Guid user = Subject(h);
    const bool held = m_->Held(user, table, Verb::kRead);
    const std::string prv = security::PrivilegeName(Verb::kRead, T(table).schema_name);
    const std::set<Guid> expected = ExpectedReadable(user, table);
    auto& svc = env_->service();

    // RetrieveMultiple: exactly the readable rows, silently filtered.
    auto page = svc.RetrieveMultiple(caller, T(table), {}, {});
    if (!held) {
      ExpectOutcome(page.status(), false, false, prv, name + " RetrieveMultiple");
    } else {
      ASSERT_TRUE(page.ok()) << name << ": " << page.status().ToString();
      std::set<Guid> got;
      for (const auto& e : page->rows) got.insert(e.id);
      EXPECT_EQ(got, expected) << name << " RetrieveMultiple\nexpected:" << Labels(expected) << "\ngot:" << Labels(got);
    }
    // Paged, with a count: every page holds only readable rows and the count matches.
    if (held) {
      std::set<Guid> got;
      PageRequest pr{.page_size = 3, .skiptoken = "", .count = true};
      for (int i = 0; i < 50; ++i) {
        auto p = svc.RetrieveMultiple(caller, T(table), {}, pr);
        ASSERT_TRUE(p.ok()) << name << ": " << p.status().ToString();
        if (i == 0) EXPECT_EQ(p->count.value_or(-1), static_cast<int64_t>(expected.size())) << name << " $count";
        for (const auto& e : p->rows) got.insert(e.id);
        if (p->next_skiptoken.empty()) break;
        pr.skiptoken = p->next_skiptoken;
        pr.count = false;
      }
      EXPECT_EQ(got, expected) << name << " paged";
    }
    // Count.
    auto n = svc.Count(caller, T(table), nullptr);
    if (!held) {
      ExpectOutcome(n.status(), false, false, prv, name + " Count");
    } else {
      ASSERT_TRUE(n.ok()) << name << ": " << n.status().ToString();
      EXPECT_EQ(*n, static_cast<int64_t>(expected.size())) << name << " Count";
    }
    // FetchXML.
    auto q =
        ParseFetchXml("<fetch><entity name=\"" + table + "\"><attribute name=\"" + table + "id\"/></entity></fetch>");
    ASSERT_TRUE(q.ok());
    auto f = ExecuteFetch(svc, caller, *q);
    if (!held) {
      ExpectOutcome(f.status(), false, false, prv, name + " FetchXML");
    } else {
      ASSERT_TRUE(f.ok()) << name << ": " << f.status().ToString();
      std::set<Guid> got;
      for (const auto& row : f->rows)
        if (row.id) got.insert(*row.id);
      EXPECT_EQ(got, expected) << name << " FetchXML\nexpected:" << Labels(expected) << "\ngot:" << Labels(got);
    }
    // Collection queries choose between two shapes of the row condition by how many rows the
    // caller reaches (access.h); both give the same rows.
    if (held) {
      for (RowFilterShape shape : {RowFilterShape::kPerRow, RowFilterShape::kIndexOr, RowFilterShape::kIdList}) {
        ScopedRowFilterShape forced(shape);
        const std::string what = name + " (shape " + std::to_string(static_cast<int>(shape)) + ")";
        auto all = svc.RetrieveMultiple(caller, T(table), {}, {});
        ASSERT_TRUE(all.ok()) << what << ": " << all.status().ToString();
        std::set<Guid> got;
        for (const auto& e : all->rows) got.insert(e.id);
        EXPECT_EQ(got, expected) << what << " RetrieveMultiple";
        auto count = svc.Count(caller, T(table), nullptr);
        ASSERT_TRUE(count.ok()) << what << ": " << count.status().ToString();
        EXPECT_EQ(*count, static_cast<int64_t>(expected.size())) << what << " Count";
        auto fetched = ExecuteFetch(svc, caller, *q);
        ASSERT_TRUE(fetched.ok()) << what << ": " << fetched.status().ToString();
        got.clear();
        for (const auto& row : fetched->rows)
          if (row.id) got.insert(*row.id);
        EXPECT_EQ(got, expected) << what << " FetchXML";
      }
    }
    // Retrieve by id: the record, or 403.
    for (const auto& r : m_->records) {
      if (r.table != table) continue;
      auto e = svc.Retrieve(caller, T(table), RecordKey{r.id, {}}, {});
      ExpectOutcome(e.status(), held, expected.count(r.id) > 0, prv, name + " Retrieve '" + r.label + "'");
      ++checks_;
    }
  });
}

// RetrievePrincipalAccess answers, for every verb, what the model says (every case of every verb
// has other privileges at Organization level, so all bits are exercised); WriteScope::CheckAccess
// of the tested verb agrees.
TEST_F(SecurityMatrixTest, PrincipalAccess) {
  for (Verb verb : security::kAllVerbs)
    ForEachCase(
        verb, [verb](const CallerContext& caller, Holder h, const std::string& table, Depth, const std::string& name) {
          const Guid user = Subject(h);
          if (verb != Verb::kCreate)
            PerRecord(caller, h, table, verb, name + " CheckAccess",
                      [&](WriteScope& s, const Model::Record& r) { return s.CheckAccess(T(table), r.id, verb); });
          for (const auto& r : m_->records) {
            if (r.table != table) continue;
            auto got = env_->service().PrincipalAccess(Platform(), caller, T(table), r.id);
            ASSERT_TRUE(got.ok()) << name << ": " << got.status().ToString();
            uint32_t expected = 0;
            for (Verb v : security::kAllVerbs)
              if (v != Verb::kCreate && m_->Reaches(user, table, v, r.owner, r.id)) expected |= security::RightOf(v);
            EXPECT_EQ(*got, expected) << name << " RetrievePrincipalAccess on '" << r.label
                                      << "': " << security::AccessRightsText(*got) << " vs "
                                      << security::AccessRightsText(expected);
            ++checks_;
          }
        });
}

TEST_F(SecurityMatrixTest, Write) {
  ForEachCase(Verb::kWrite,
              [](const CallerContext& caller, Holder h, const std::string& table, Depth, const std::string& name) {
                PerRecord(caller, h, table, Verb::kWrite, name + " Update", [&](WriteScope& s, const Model::Record& r) {
                  EntityInput in;
                  in.table = &T(table);
                  in.fields.push_back(Field{T(table).FindColumn("telephone1"), std::string("555")});
                  return s.Upsert(in, RecordKey{r.id, {}}, UpsertMode::kUpdateOnly, std::nullopt).status();
                });
              });
}

TEST_F(SecurityMatrixTest, Delete) {
  ForEachCase(Verb::kDelete, [](const CallerContext& caller, Holder h, const std::string& table, Depth,
                                const std::string& name) {
    PerRecord(caller, h, table, Verb::kDelete, name + " Delete", [&](WriteScope& s, const Model::Record& r) {
      return s.Delete(T(table), RecordKey{r.id, {}}, std::nullopt).status();
    });
  });
}

TEST_F(SecurityMatrixTest, Assign) {
  ForEachCase(Verb::kAssign, [](const CallerContext& caller, Holder h, const std::string& table, Depth,
                                const std::string& name) {
    PerRecord(caller, h, table, Verb::kAssign, name + " Assign", [&](WriteScope& s, const Model::Record& r) {
      return s.Assign(T(table), RecordKey{r.id, {}}, EntityRef{"systemuser", Subject(h)}).status();
    });
  });
}

TEST_F(SecurityMatrixTest, Share) {
  ForEachCase(Verb::kShare, [](const CallerContext& caller, Holder h, const std::string& table, Depth,
                               const std::string& name) {
    PerRecord(caller, h, table, Verb::kShare, name + " GrantAccess", [&](WriteScope& s, const Model::Record& r) {
      return s.Share(T(table), r.id, EntityRef{"systemuser", u_root_}, security::kReadAccess, false);
    });
    PerRecord(caller, h, table, Verb::kShare, name + " RevokeAccess", [&](WriteScope& s, const Model::Record& r) {
      return s.Unshare(T(table), r.id, EntityRef{"systemuser", u_root_});
    });
  });
}

// Append: the tested record's own lookup is set (SetReference), or it is added to another
// record's 1:N collection (Associate).
TEST_F(SecurityMatrixTest, Append) {
  ForEachCase(Verb::kAppend, [](const CallerContext& caller, Holder h, const std::string& table, Depth,
                                const std::string& name) {
    const bool account = table == "account";
    const catalog::NavProperty* single = T(table).FindNav(account ? "parentaccountid" : "parentcustomerid_account");
    const catalog::NavProperty* collection =
        T("account").FindNav(account ? "account_parent_account" : "contact_customer_accounts");
    ASSERT_NE(single, nullptr);
    ASSERT_NE(collection, nullptr);
    PerRecord(
        caller, h, table, Verb::kAppend, name + " SetReference",
        [&](WriteScope& s, const Model::Record& r) {
          return s
              .SetReference(T(table), RecordKey{r.id, {}}, *single,
                            BindTarget{&T("account"), RecordKey{anchor_account_, {}}})
              .status();
        },
        anchor_account_);
    PerRecord(
        caller, h, table, Verb::kAppend, name + " Associate",
        [&](WriteScope& s, const Model::Record& r) {
          return s
              .Associate(T("account"), RecordKey{anchor_account_, {}}, *collection,
                         BindTarget{&T(table), RecordKey{r.id, {}}}, true)
              .status();
        },
        anchor_account_);
  });
}

// AppendTo: another record's lookup is pointed at the tested record (SetReference), or that
// record is added to the tested record's 1:N collection (Associate).
TEST_F(SecurityMatrixTest, AppendTo) {
  ForEachCase(Verb::kAppendTo, [](const CallerContext& caller, Holder h, const std::string& table, Depth,
                                  const std::string& name) {
    const bool account = table == "account";
    const catalog::NavProperty* single = T("account").FindNav(account ? "parentaccountid" : "primarycontactid");
    const catalog::NavProperty* collection =
        T(table).FindNav(account ? "account_parent_account" : "account_primary_contact");
    ASSERT_NE(single, nullptr);
    ASSERT_NE(collection, nullptr);
    PerRecord(
        caller, h, table, Verb::kAppendTo, name + " SetReference",
        [&](WriteScope& s, const Model::Record& r) {
          return s
              .SetReference(T("account"), RecordKey{anchor_account_, {}}, *single,
                            BindTarget{&T(table), RecordKey{r.id, {}}})
              .status();
        },
        anchor_account_);
    PerRecord(
        caller, h, table, Verb::kAppendTo, name + " Associate",
        [&](WriteScope& s, const Model::Record& r) {
          return s
              .Associate(T(table), RecordKey{r.id, {}}, *collection,
                         BindTarget{&T("account"), RecordKey{anchor_account_, {}}}, true)
              .status();
        },
        anchor_account_);
  });
}

// Create: a record owned by the subject, a user of the same business unit, of a child unit, of
// another unit, and by teams, succeeds exactly when the Create level reaches that owner.
TEST_F(SecurityMatrixTest, Create) {
  ForEachCase(Verb::kCreate, [](const CallerContext& caller, Holder h, const std::string& table, Depth,
                                const std::string& name) {
    const Guid user = Subject(h);
    const std::string prv = security::PrivilegeName(Verb::kCreate, T(table).schema_name);
    for (const Guid& owner :
         {u_root_, u_a_, u_a2_, u_a1_, u_b_, u_b2_, t_a_, t_b_, default_team_[a_], default_team_[b_]}) {
      const bool team = m_->teams.count(owner) > 0;
      Status s = Undone(caller, [&](WriteScope& scope) {
        EntityInput in;
        in.table = &T(table);
        in.fields.push_back(Field{T(table).FindColumn(table == "account" ? "name" : "lastname"), std::string("new")});
        in.fields.push_back(Field{T(table).FindColumn("ownerid"), EntityRef{team ? "team" : "systemuser", owner}});
        return scope.Create(in, std::nullopt).status();
      });
      const bool held = m_->Held(user, table, Verb::kCreate);
      const bool reaches = m_->Reaches(user, table, Verb::kCreate, owner, std::nullopt);
      std::string what = name + " owned by " + owner.ToString();
      if (held && reaches) {
        EXPECT_TRUE(s.ok()) << what << ": " << s.ToString();
      } else {
        // Both a missing privilege and an owner out of reach are PrivilegeDenied.
        EXPECT_EQ(s.code(), Code::kPermissionDenied) << what << ": " << s.ToString();
        EXPECT_EQ(s.error_code(), err::kPrivilegeDenied) << what << ": " << s.ToString();
        EXPECT_NE(s.message().find(prv), std::string::npos) << what << ": " << s.message();
      }
      ++checks_;
    }
    // Created without an owner: the caller owns it, which any level reaches.
    Status s = Undone(caller, [&](WriteScope& scope) {
      EntityInput in;
      in.table = &T(table);
      in.fields.push_back(Field{T(table).FindColumn(table == "account" ? "name" : "lastname"), std::string("mine")});
      return scope.Create(in, std::nullopt).status();
    });
    ExpectOutcome(s, m_->Held(user, table, Verb::kCreate), true, prv, name + " owned by the caller");
  });
}

// Organization-owned tables know only None and Organization levels: all rows or none.
TEST_F(SecurityMatrixTest, OrganizationOwnedTable) {
  const std::string table = "transactioncurrency";
  std::vector<Guid> rows = {env_->ids().base_currency_id};
  for (const char* code : {"EUR", "GBP"})
    rows.push_back(MakeRecord(table, {{"currencyname", std::string(code)},
                                      {"isocurrencycode", std::string(code)},
                                      {"currencysymbol", std::string("x")},
                                      {"currencyprecision", int64_t{2}},
                                      {"exchangerate", 1.5}}));
  auto& svc = env_->service();
  for (Verb verb : {Verb::kRead, Verb::kWrite, Verb::kDelete, Verb::kCreate})
    for (Holder h : {Holder::kUser, Holder::kTeam})
      for (Depth d : {Depth::kNone, Depth::kGlobal}) {
        std::vector<Grant> grants;
        for (Verb v : security::kAllVerbs) grants.push_back({table, v, v == verb ? d : Depth::kGlobal});
        SetGrants(h, grants);
        CallerContext caller = Resolve(h);
        const std::string name = CaseName(table, verb, d, h);
        const std::string prv = security::PrivilegeName(verb, T(table).schema_name);
        const bool held = d != Depth::kNone;
        ++cases_;
        switch (verb) {
          case Verb::kRead: {
            auto page = svc.RetrieveMultiple(caller, T(table), {}, {});
            if (!held) {
              ExpectOutcome(page.status(), false, false, prv, name);
              break;
            }
            ASSERT_TRUE(page.ok()) << name << ": " << page.status().ToString();
            EXPECT_EQ(page->rows.size(), rows.size()) << name;
            for (const Guid& id : rows)
              ExpectOutcome(svc.Retrieve(caller, T(table), RecordKey{id, {}}, {}).status(), held, true, prv, name);
            break;
          }
          case Verb::kWrite:
            for (const Guid& id : rows)
              ExpectOutcome(
                  Undone(caller,
                         [&](WriteScope& s) {
                           EntityInput in;
                           in.table = &T(table);
                           in.fields.push_back(Field{T(table).FindColumn("currencysymbol"), std::string("y")});
                           return s.Upsert(in, RecordKey{id, {}}, UpsertMode::kUpdateOnly, std::nullopt).status();
                         }),
                  held, true, prv, name);
            break;
          case Verb::kDelete:
            for (size_t i = 1; i < rows.size(); ++i)  // the base currency is in use
              ExpectOutcome(Undone(caller,
                                   [&](WriteScope& s) {
                                     return s.Delete(T(table), RecordKey{rows[i], {}}, std::nullopt).status();
                                   }),
                            held, true, prv, name);
            break;
          case Verb::kCreate:
            ExpectOutcome(Undone(caller,
                                 [&](WriteScope& s) {
                                   EntityInput in;
                                   in.table = &T(table);
                                   for (auto [col, v] : std::vector<std::pair<const char*, Value>>{
                                            {"currencyname", std::string("Yen")},
                                            {"isocurrencycode", std::string("JPY")},
                                            {"currencysymbol", std::string("Y")},
                                            {"currencyprecision", int64_t{0}},
                                            {"exchangerate", 100.0}})
                                     in.fields.push_back(Field{T(table).FindColumn(col), v});
                                   return s.Create(in, std::nullopt).status();
                                 }),
                          held, true, prv, name);
            break;
          default:
            break;
        }
      }
  // Records without an owner cannot be shared or assigned, whatever the caller holds.
  std::vector<Grant> all;
  for (Verb v : security::kAllVerbs) all.push_back({table, v, Depth::kGlobal});
  SetGrants(Holder::kUser, all);
  CallerContext caller = Resolve(Holder::kUser);
  Status share = Undone(caller, [&](WriteScope& s) {
    return s.Share(T(table), rows[1], EntityRef{"systemuser", u_root_}, security::kReadAccess, false);
  });
  EXPECT_EQ(share.code(), Code::kInvalidArgument) << share.ToString();
  Status assign = Undone(caller, [&](WriteScope& s) {
    return s.Assign(T(table), RecordKey{rows[1], {}}, EntityRef{"systemuser", u_root_}).status();
  });
  EXPECT_EQ(assign.code(), Code::kInvalidArgument) << assign.ToString();
}

// A share gives row access only together with the privilege (platform.md §2.6).
TEST_F(SecurityMatrixTest, ShareNeedsThePrivilege) {
  // "shared with a (read, write, append)": a holds no Read privilege at all, then Basic.
  Guid shared;
  for (const auto& r : m_->records)
    if (r.table == "account" && r.label == "account shared with a (read, write, append)") shared = r.id;
  ASSERT_FALSE(shared.IsNil());
  SetGrants(Holder::kUser, {{"account", Verb::kWrite, Depth::kBasic}});
  CallerContext caller = Resolve(Holder::kUser);
  auto e = env_->service().Retrieve(caller, T("account"), RecordKey{shared, {}}, {});
  EXPECT_EQ(e.status().error_code(), err::kPrivilegeDenied) << e.status().ToString();
  SetGrants(Holder::kUser, {{"account", Verb::kRead, Depth::kBasic}});
  caller = Resolve(Holder::kUser);
  e = env_->service().Retrieve(caller, T("account"), RecordKey{shared, {}}, {});
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  // The share's Write right without the Write privilege: PrivilegeDenied.
  Status w = Undone(caller, [&](WriteScope& s) {
    EntityInput in;
    in.table = &T("account");
    in.fields.push_back(Field{T("account").FindColumn("telephone1"), std::string("1")});
    return s.Upsert(in, RecordKey{shared, {}}, UpsertMode::kUpdateOnly, std::nullopt).status();
  });
  EXPECT_EQ(w.error_code(), err::kPrivilegeDenied) << w.ToString();
}

// Rights are the union of every role: a direct role anchored at the user's unit and a team role
// anchored at the team's.
TEST_F(SecurityMatrixTest, UnionOfDirectAndTeamRoles) {
  SetGrants(Holder::kTeam, {{"account", Verb::kRead, Depth::kLocal}});
  // The team subject b also gets a direct role with Local Read (anchored at B).
  Guid extra = Role("matrix extra");
  Link("systemuser", u_b_, "systemuserroles_association", "role", extra);
  Status s = env_->engine().WriteSync([&](storage::Connection& c) {
    std::vector<storage::SqlValue> p = {GuidGenerator::NewSequential().ToString(), extra.ToString(),
                                        security::PrivilegeId("prvReadAccount").ToString(), int64_t{2}};
    return c
        .Exec(
            "INSERT INTO roleprivileges (roleprivilegesid, roleid, privilegeid, privilegedepthmask) VALUES (?, ?, ?, "
            "?)",
            p)
        .status();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  env_->security().Invalidate();
  m_->user_grants[u_b_] = {{"account", Verb::kRead, Depth::kLocal}};
  CallerContext caller = Resolve(Holder::kTeam);
  auto page = env_->service().RetrieveMultiple(caller, T("account"), {}, {});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::set<Guid> got;
  for (const auto& e : page->rows) got.insert(e.id);
  std::set<Guid> expected = ExpectedReadable(u_b_, "account");
  EXPECT_EQ(got, expected) << "expected:" << Labels(expected) << "\ngot:" << Labels(got);
  // Both anchors count: a row owned in A (team role) and one owned in B (direct role).
  bool in_a = false, in_b = false;
  for (const auto& r : m_->records)
    if (r.table == "account" && got.count(r.id)) {
      in_a |= r.owner == u_a2_;
      in_b |= r.owner == u_b2_;
    }
  EXPECT_TRUE(in_a && in_b);
  // Undo: remove the extra role.
  s = env_->engine().WriteSync([&](storage::Connection& c) {
    RETURN_IF_ERROR(
        c.Exec("DELETE FROM roleprivileges WHERE roleid = ?", std::vector<storage::SqlValue>{extra.ToString()})
            .status());
    return c.Exec("DELETE FROM systemuserroles WHERE roleid = ?", std::vector<storage::SqlValue>{extra.ToString()})
        .status();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  env_->security().Invalidate();
  m_->user_grants.erase(u_b_);
}

// Access teams hold no roles: a role given to one grants its members nothing.
TEST_F(SecurityMatrixTest, AccessTeamRolesGiveNothing) {
  SetGrants(Holder::kUser, {});
  Guid role = Role("matrix access team");
  Link("team", t_access_, "teamroles_association", "role", role);
  Status s = env_->engine().WriteSync([&](storage::Connection& c) {
    std::vector<storage::SqlValue> p = {GuidGenerator::NewSequential().ToString(), role.ToString(),
                                        security::PrivilegeId("prvReadAccount").ToString(), int64_t{8}};
    return c
        .Exec(
            "INSERT INTO roleprivileges (roleprivilegesid, roleid, privilegeid, privilegedepthmask) VALUES (?, ?, ?, "
            "?)",
            p)
        .status();
  });
  ASSERT_TRUE(s.ok());
  env_->security().Invalidate();
  CallerContext caller = Resolve(Holder::kUser);
  auto page = env_->service().RetrieveMultiple(caller, T("account"), {}, {});
  EXPECT_EQ(page.status().error_code(), err::kPrivilegeDenied) << page.status().ToString();
  s = env_->engine().WriteSync([&](storage::Connection& c) {
    RETURN_IF_ERROR(
        c.Exec("DELETE FROM roleprivileges WHERE roleid = ?", std::vector<storage::SqlValue>{role.ToString()})
            .status());
    return c.Exec("DELETE FROM teamroles WHERE roleid = ?", std::vector<storage::SqlValue>{role.ToString()}).status();
  });
  ASSERT_TRUE(s.ok());
  env_->security().Invalidate();
}

// An inactive role counts for nothing; a role change made through the service is seen without
// an explicit invalidation; a disabled user cannot be resolved.
TEST_F(SecurityMatrixTest, RoleStateCacheAndDisabledUsers) {
  SetGrants(Holder::kUser, {{"account", Verb::kRead, Depth::kGlobal}});
  auto& svc = env_->service();
  ASSERT_TRUE(svc.RetrieveMultiple(Resolve(Holder::kUser), T("account"), {}, {}).ok());
  Status s = env_->engine().WriteSync([&](storage::Connection& c) {
    return c
        .Exec("UPDATE role SET statecode = 1 WHERE roleid = ?", std::vector<storage::SqlValue>{role_user_.ToString()})
        .status();
  });
  ASSERT_TRUE(s.ok());
  env_->security().Invalidate();
  EXPECT_EQ(svc.RetrieveMultiple(Resolve(Holder::kUser), T("account"), {}, {}).status().error_code(),
            err::kPrivilegeDenied);
  s = env_->engine().WriteSync([&](storage::Connection& c) {
    return c
        .Exec("UPDATE role SET statecode = 0 WHERE roleid = ?", std::vector<storage::SqlValue>{role_user_.ToString()})
        .status();
  });
  ASSERT_TRUE(s.ok());
  env_->security().Invalidate();

  // Disassociating the role through the service takes effect for the next request.
  ASSERT_TRUE(svc.RetrieveMultiple(Resolve(Holder::kUser), T("account"), {}, {}).ok());
  const catalog::NavProperty* roles = T("systemuser").FindNav("systemuserroles_association");
  std::promise<Result<Guid>> p;
  svc.Associate(Platform(), T("systemuser"), RecordKey{u_a_, {}}, *roles,
                BindTarget{&T("role"), RecordKey{role_user_, {}}}, false,
                [&p](Result<Guid> r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(p.get_future().get().ok());
  EXPECT_EQ(svc.RetrieveMultiple(Resolve(Holder::kUser), T("account"), {}, {}).status().error_code(),
            err::kPrivilegeDenied);
  Link("systemuser", u_a_, "systemuserroles_association", "role", role_user_);
  EXPECT_TRUE(svc.RetrieveMultiple(Resolve(Holder::kUser), T("account"), {}, {}).ok());

  // A disabled user is not resolved.
  Guid off = MakeRecord("systemuser", {{"firstname", std::string("off")},
                                       {"lastname", std::string("Matrix")},
                                       {"isdisabled", true},
                                       {"businessunitid", EntityRef{"businessunit", a_}}});
  auto c = env_->ResolveUser(off);
  EXPECT_EQ(c.status().code(), Code::kUnauthenticated) << c.status().ToString();
}

// The System Administrator role passes every check, held directly or through a team.
TEST_F(SecurityMatrixTest, SystemAdministrator) {
  auto admin = env_->ResolveUser(env_->ids().admin_user_id);
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE(admin->principal && admin->principal->system_administrator);
  SetGrants(Holder::kTeam, {});
  Guid role = MakeRecord("role", {{"name", std::string("sysadmin copy")},
                                  {"roletemplateid", *Guid::Parse(security::kSystemAdministratorTemplateId)},
                                  {"businessunitid", EntityRef{"businessunit", root_}}});
  Link("team", t_a_, "teamroles_association", "role", role);
  for (const CallerContext& caller : {*admin, Resolve(Holder::kTeam)}) {
    for (const char* table : {"account", "contact"}) {
      auto page = env_->service().RetrieveMultiple(caller, T(table), {}, {});
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      size_t n = 0;
      for (const auto& r : m_->records) n += r.table == table;
      EXPECT_EQ(page->rows.size(), n) << table;
      for (const auto& r : m_->records) {
        if (r.table != table) continue;
        EXPECT_TRUE(Undone(caller,
                           [&](WriteScope& s) {
                             return s.Delete(T(table), RecordKey{r.id, {}}, std::nullopt).status();
                           })
                        .ok())
            << r.label;
      }
    }
  }
  Status s = env_->engine().WriteSync([&](storage::Connection& c) {
    return c.Exec("DELETE FROM teamroles WHERE roleid = ?", std::vector<storage::SqlValue>{role.ToString()}).status();
  });
  ASSERT_TRUE(s.ok());
  env_->security().Invalidate();
}

// Last (gtest keeps declaration order): the size of the generated matrix.
TEST_F(SecurityMatrixTest, ZSummary) {
  RecordProperty("cases", cases_);
  RecordProperty("checks", checks_);
  std::printf("security matrix: %d cases, %d record checks\n", cases_, checks_);
}

}  // namespace
}  // namespace tributary::data
