#pragma once
// Auditing (platform.md §3.10): the audit rows the platform writes in the transaction of each
// audited change, and the change history read back from them (RetrieveRecordChangeHistory).
//
// A change is audited when the organization audits (organization.isauditenabled), its table does
// (catalog::Table::audit_enabled) and, for updates, a changed column does
// (catalog::Column::audit_enabled). Audit rows are rows of the standard table `audit`, read-only
// for clients; their `changedata` holds the old and new values as JSON
// (docs/formats/audit-changedata.md), their `attributemask` the changed columns' logical names.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/base/time.h"
#include "tributary/catalog/catalog.h"
#include "tributary/data/service.h"
#include "tributary/data/value.h"
#include "tributary/storage/engine.h"

namespace tributary::data {

// audit.action: the values Dataverse uses.
enum class AuditAction : int {
  kCreate = 1,
  kUpdate = 2,
  kDelete = 3,
  kAssign = 13,
  kShare = 14,
  kAssociate = 33,
  kDisassociate = 34,
  kModifyShare = 48,
  kUnshare = 49,
  kAssignRoleToTeam = 53,
  kRemoveRoleFromTeam = 54,
  kAssignRoleToUser = 55,
  kRemoveRoleFromUser = 56,
  kAddPrivilegesToRole = 57,
  kRemovePrivilegesFromRole = 58,
};

// audit.operation.
enum class AuditOperation : int { kCreate = 1, kUpdate = 2, kDelete = 3, kAccess = 4 };

// SdkEntityDoesNotSupportMessage: a message the table does not take (creating an audit row).
inline constexpr uint32_t kErrEntityDoesNotSupportMessage = 0x80040800;

// Audit rows are written by the platform only: for the `audit` table this fails with 405
// (kErrEntityDoesNotSupportMessage) naming `message` ("Create", "Update", "Delete", "Associate");
// OK for every other table.
Status RefuseAuditWrite(const catalog::Table& table, std::string_view message);

// Column values of one record, as the writer collects them.
using ColumnValues = std::vector<std::pair<const catalog::Column*, Value>>;

// Writes the audit rows of one write job, with the job's connection, so that they commit or roll
// back with the change. One per job, on the store's writer thread; not thread-safe. Every Record*
// call is a no-op (OK) when the change is not audited.
class Auditor {
 public:
  // `org_cache` (may be null: always read the store) keeps organization.isauditenabled between
  // jobs; it is only touched on the writer thread. `next_version` numbers the audit rows
  // (versionnumber). The references must outlive the auditor.
  Auditor(storage::Connection& c, const catalog::Catalog& cat, const CallerContext& caller, Timestamp now,
          std::optional<bool>* org_cache, std::function<int64_t()> next_version);
  // Drops the cached organization flag when this job wrote the organization row (the job may
  // still roll back: the next job reads the flag again).
  ~Auditor();
  Auditor(const Auditor&) = delete;
  Auditor& operator=(const Auditor&) = delete;

  // Whether changes to `table` are audited now (the organization's flag and the table's).
  Result<bool> Enabled(const catalog::Table& table);
  // Whether changes of a column are recorded (its flag; never the primary id).
  static bool ColumnAudited(const catalog::Column& c);

  // A record was created with `values` (the non-null audited ones are recorded as new values).
  Status RecordCreate(const catalog::Table& table, const Guid& id, const ColumnValues& values);
  // Before an update: the current values of the audited columns among `changes`; nullopt when the
  // table is not audited now (then RecordUpdate writes nothing).
  Result<std::optional<ColumnValues>> ReadBefore(const catalog::Table& table, const Guid& id,
                                                 const ColumnValues& changes);
  // After an update: one Update row with the old and new values of the audited columns whose value
  // changed; a changed ownerid is recorded as an Assign row of its own. Nothing when nothing
  // audited changed. Also notes writes to the organization row (`before` may be nullopt).
  Status RecordUpdate(const catalog::Table& table, const Guid& id, const std::optional<ColumnValues>& before,
                      const ColumnValues& after);
  // Before a delete: reads the record's audited values and writes the Delete row.
  Status RecordDelete(const catalog::Table& table, const Guid& id);
  // An N:N association of `id` (of `table`) with `other` (of `other_table`) through `rel` was added
  // or removed. Each audited side gets a row naming the other side: Assign/Remove Role To/From
  // User (systemuserroles), To/From Team (teamroles), Add/Remove Privileges (roleprivileges, role
  // side only), else Associate/Disassociate Entities.
  Status RecordAssociate(const catalog::Table& table, const Guid& id, const catalog::Relationship& rel,
                         const catalog::Table& other_table, const Guid& other, bool associate);
  // An owner change (Assign) outside the update path: ownerid from `old_owner` to `new_owner`.
  Status RecordAssign(const catalog::Table& table, const Guid& id, const EntityRef& old_owner,
                      const EntityRef& new_owner);
  // A share of the record with `principal` (systemuser or team) changed from `old_mask` to
  // `new_mask` (AccessRights): Share when it is new (old 0), Unshare when removed (new 0), else
  // Modify Share. Nothing when the masks are equal.
  Status RecordShare(const catalog::Table& table, const Guid& id, const EntityRef& principal, uint32_t old_mask,
                     uint32_t new_mask);

 private:
  struct Row;
  Status Write(const Row& row);
  Result<bool> OrganizationAudits();

  storage::Connection& c_;
  const catalog::Catalog& cat_;
  const CallerContext& caller_;
  Timestamp now_;
  std::optional<bool>* org_cache_;
  std::function<int64_t()> next_version_;
  const catalog::Table* audit_ = nullptr;  // the audit table; null when the catalog has none
  std::optional<bool> org_;                // the flag as read by this job
  bool org_written_ = false;               // this job wrote the organization row
  Guid transaction_;                       // shared by the job's rows; nil until the first
  std::string insert_sql_;
};

// One entry of a record's change history: an audit row and what its changedata says.
struct AuditDetail {
  enum class Kind : uint8_t {
    kAttribute,     // AttributeAuditDetail: old and new column values
    kRelationship,  // RelationshipAuditDetail: the records associated or disassociated
    kShare,         // ShareAuditDetail: a principal's access rights before and after
  };
  Kind kind = Kind::kAttribute;
  Entity record;  // the audit row (the columns Dataverse's AuditRecord has)
  // kAttribute: values of the audited record's table (only columns the table still has).
  std::vector<Field> old_values, new_values;
  std::vector<std::string> deleted_attributes;  // changedata columns the table no longer has
  // kRelationship
  std::string relationship;
  std::vector<EntityRef> targets;
  // kShare
  EntityRef principal;
  uint32_t old_mask = 0, new_mask = 0;
};

// Decodes an audit row's changedata into `detail` (kind and values) for a record of `table`
// (null when the table was dropped: values then all count as deleted attributes). Text that is not
// changedata of a known version fails with InvalidArgument.
Status DecodeChangeData(const catalog::Table* table, std::string_view changedata, AuditDetail& detail);

// The change history of record `id` of `table`, newest first: every audit row about it that the
// caller may read (the caller must also be able to read the record while it exists). Skips
// `skip` entries and returns at most `max` (≤ 5000); `total` receives the number of entries.
Result<std::vector<AuditDetail>> RetrieveRecordChangeHistory(OrganizationService& svc, const CallerContext& caller,
                                                             const catalog::Table& table, const Guid& id, int64_t skip,
                                                             int64_t max, int64_t* total);

}  // namespace tributary::data
