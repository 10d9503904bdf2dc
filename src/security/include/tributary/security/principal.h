#pragma once
// The security model of Dataverse (reference/platform.md §2): record-level privileges
// prv<Verb><Table> held at an access level (depth) through security roles, given to users
// directly or through the teams they belong to; business units in a tree; field security
// profiles. A Principal is the immutable, evaluated view of one user's rights, built by
// LoadPrincipal from the store and shared by every request of that user until a security table
// changes (see SecurityCache).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tributary/base/guid.h"
#include "tributary/base/status.h"
#include "tributary/storage/engine.h"

namespace tributary::security {

// The eight record-level privileges of every table, in Dataverse's naming order.
enum class Verb : uint8_t { kCreate, kRead, kWrite, kDelete, kAppend, kAppendTo, kAssign, kShare };
inline constexpr size_t kVerbCount = 8;
inline constexpr std::array<Verb, kVerbCount> kAllVerbs = {Verb::kCreate, Verb::kRead,     Verb::kWrite,  Verb::kDelete,
                                                           Verb::kAppend, Verb::kAppendTo, Verb::kAssign, Verb::kShare};
std::string_view VerbName(Verb v);  // "Create", "Read", …, "AppendTo", "Assign", "Share"

// AccessRights flags (principalobjectaccess.accessrightsmask, RetrievePrincipalAccess).
enum AccessRight : uint32_t {
  kReadAccess = 1,
  kWriteAccess = 2,
  kAppendAccess = 4,
  kAppendToAccess = 16,
  kCreateAccess = 32,
  kDeleteAccess = 65536,
  kShareAccess = 262144,
  kAssignAccess = 524288,
};
inline constexpr uint32_t kAllAccessRights = kReadAccess | kWriteAccess | kAppendAccess | kAppendToAccess |
                                             kCreateAccess | kDeleteAccess | kShareAccess | kAssignAccess;
uint32_t RightOf(Verb v);
// "ReadAccess, WriteAccess" for a mask (the AccessRights enum members' names, as the Web API shows them).
std::string AccessRightsText(uint32_t mask);
// Parses "ReadAccess, WriteAccess" or a decimal mask; false on an unknown name.
bool ParseAccessRights(std::string_view text, uint32_t& mask);

// Access levels. The roleprivileges.privilegedepthmask values are 1, 2, 4, 8.
enum class Depth : int8_t { kNone = -1, kBasic = 0, kLocal = 1, kDeep = 2, kGlobal = 3 };
int DepthMask(Depth d);                            // 0, 1, 2, 4, 8
Depth DepthFromMask(int64_t mask);                 // the highest bit set; kNone for 0
std::string_view DepthName(Depth d);               // "None", "Basic", "Local", "Deep", "Global" (PrivilegeDepth)
bool ParseDepth(std::string_view text, Depth& d);  // a name above or 0–3

// prv<Verb><SchemaName>, e.g. prvReadAccount; lookups are case-insensitive.
std::string PrivilegeName(Verb v, std::string_view table_schema_name);
// Stable id of a privilege, from its name (lower-cased): the same in every environment.
Guid PrivilegeId(std::string_view name);

// Privileges that are not about one table.
inline constexpr std::string_view kPrvActOnBehalfOfAnotherUser = "prvActOnBehalfOfAnotherUser";
inline constexpr std::string_view kPrvReadAuditSummary = "prvReadAuditSummary";
inline constexpr std::array<std::string_view, 2> kMiscPrivileges = {kPrvActOnBehalfOfAnotherUser, kPrvReadAuditSummary};

// The role template of System Administrator (the same GUID as in Dataverse): its holders pass
// every privilege, access and column-security check.
inline constexpr std::string_view kSystemAdministratorTemplateId = "627090ff-40a3-4053-8790-584edc5be201";

// Field-security permission bits of one column for one principal.
enum FieldRight : uint8_t { kFieldRead = 1, kFieldCreate = 2, kFieldUpdate = 4 };

// What a user may do with the rows of one table for one verb.
struct TableAccess {
  bool held = false;    // the privilege is held at some depth (the privilege check)
  bool global = false;  // Organization depth: every row
  // Business units whose rows the user reaches through Local/Deep grants (a Deep grant adds the
  // BU's whole subtree), sorted, without duplicates. Rows owned by the user or their teams, and
  // rows shared with them, are reachable at any depth.
  std::vector<Guid> business_units;
};

class Principal {
 public:
  Guid user_id;
  Guid business_unit_id;
  bool system_administrator = false;
  bool disabled = false;
  std::vector<Guid> teams;  // every team the user belongs to (owner, access and their BU's default team)

  // The access of `verb` on the table with this schema name (case-insensitive). A privilege that
  // does not exist or is not held yields held == false.
  const TableAccess& Access(std::string_view table_schema_name, Verb verb) const;
  // Misc privileges by name (case-insensitive); a system administrator holds all.
  bool Holds(std::string_view privilege_name) const;
  // Field-security rights of a secured column (table and column logical names).
  uint8_t FieldRights(std::string_view table, std::string_view column) const;

  // Filled by LoadPrincipal.
  std::unordered_map<std::string, std::array<TableAccess, kVerbCount>> tables;  // lower-case schema name
  std::unordered_set<std::string> misc;                                         // lower-case names
  std::unordered_map<std::string, uint8_t> fields;                              // "table.column"

  // A planning hint of data/access.cpp, kept as long as the principal: how many rows of a table
  // (key: "<logical name>/<verb>") the user reaches, counted when first needed. Thread-safe.
  std::optional<int64_t> CachedReach(const std::string& key) const;
  void CacheReach(const std::string& key, int64_t rows) const;

 private:
  mutable std::mutex reach_mu_;
  mutable std::unordered_map<std::string, int64_t> reach_;
};

using PrincipalPtr = std::shared_ptr<const Principal>;

// Reads one user's principal from the store: the user's business unit, teams, the roles of the
// user and of those teams with their privileges, the business-unit tree and field permissions.
// NotFound when the user does not exist.
Result<PrincipalPtr> LoadPrincipal(storage::Connection& c, const Guid& user_id);

// Principals by user id, valid until Invalidate() (called after any committed change to a table
// the security model reads: systemuser, team, teammembership, businessunit, role, roleprivileges,
// systemuserroles, teamroles, fieldsecurityprofile, fieldpermission, systemuserprofiles,
// teamprofiles). Entries also expire after kMaxAgeSeconds, so changes made by another process on
// the same store (the `tributary user` / `tributary role` commands) take effect. Thread-safe.
class SecurityCache {
 public:
  explicit SecurityCache(storage::Engine& engine) : engine_(engine) {}
  Result<PrincipalPtr> Get(const Guid& user_id);
  void Invalidate();
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

  // Whether writes to this table change principals.
  static bool IsSecurityTable(std::string_view logical_name);
  static constexpr int kMaxAgeSeconds = 30;

 private:
  storage::Engine& engine_;
  std::atomic<uint64_t> epoch_{1};
  std::mutex mu_;
  uint64_t cached_epoch_ = 0;
  struct Entry {
    PrincipalPtr principal;
    std::chrono::steady_clock::time_point loaded;
  };
  std::unordered_map<std::string, Entry> cache_;  // by user id text
};

}  // namespace tributary::security
