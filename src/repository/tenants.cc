// Tenants and API tokens. A token is "orr_" + 64 hex characters (256 random
// bits); only its SHA-256 is stored. A plain hash (not a slow password hash)
// is enough because the token has full entropy: no dictionary to try.
#include <algorithm>

#include "core/clock.h"
#include "core/hash.h"
#include "core/random.h"
#include "repository/rows.h"

namespace orrery {
namespace {

constexpr std::string_view kTokenPrefix = "orr_";

// "orr_" + 64 lower-case hex digits (checked on every request: no allocation).
bool WellFormedToken(std::string_view token) {
  if (token.size() != kTokenPrefix.size() + 64 || token.substr(0, 4) != kTokenPrefix) return false;
  return std::all_of(token.begin() + 4, token.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

nlohmann::json OptionalTime(const std::optional<int64_t>& at) {
  return at ? nlohmann::json(FormatUnixSeconds(*at)) : nlohmann::json(nullptr);
}

}  // namespace

// How long a cached token answer may miss another process's revoke.
constexpr int64_t kAuthCacheSeconds = 2;
// Bounds the cache; it is cleared when full (tokens are few in practice).
constexpr size_t kAuthCacheEntries = 4096;

Result<Caller> Repository::Authenticate(std::string_view token) {
  if (token.empty()) return Unauthenticated("missing token (Authorization: Bearer <token>)");
  if (!WellFormedToken(token)) return Unauthenticated("malformed token");
  uint64_t generation = CatalogGeneration();  // before the read whose answer is cached
  int64_t now = Now();
  std::string key(token);
  {
    std::lock_guard lock(auth_cache_mutex_);
    auto it = auth_cache_.find(key);
    if (it != auth_cache_.end()) {
      const CachedCaller& cached = it->second;
      bool fresh = cached.generation == generation && now - cached.cached_at < kAuthCacheSeconds &&
                   (!cached.expires_at || *cached.expires_at > now);
      if (fresh) return cached.caller;
      auth_cache_.erase(it);
    }
  }
  // Only successes are cached: a wrong token always costs a catalog read.
  std::optional<int64_t> expires_at;
  ASSIGN_OR_RETURN(Caller caller, AuthenticateUncached(token, &expires_at));
  std::lock_guard lock(auth_cache_mutex_);
  if (auth_cache_.size() >= kAuthCacheEntries) auth_cache_.clear();
  auth_cache_[key] = CachedCaller{caller, expires_at, generation, now};
  return caller;
}

Result<Caller> Repository::AuthenticateUncached(std::string_view token,
                                                std::optional<int64_t>* expires) {
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(Statement find,
                   db.Prepare("SELECT k.id, k.tenant_id, t.name, k.role, k.expires_at, "
                              "k.revoked_at FROM tokens k JOIN tenants t ON t.id = k.tenant_id "
                              "WHERE k.hash = ?"));
  find.Bind(1, Sha256Hex(token));
  ASSIGN_OR_RETURN(bool found, find.Step());
  if (!found) return Unauthenticated("invalid token");
  if (!find.ColumnIsNull(5)) return Unauthenticated("token revoked");
  std::optional<int64_t> expires_at = find.ColumnOptionalInt(4);
  if (expires_at && *expires_at <= Now()) return Unauthenticated("token expired");
  ASSIGN_OR_RETURN(Role role, ParseRole(find.ColumnText(3)));
  *expires = expires_at;
  return Caller{find.ColumnInt(1), find.ColumnText(2), role, find.ColumnInt(0)};
}

Result<nlohmann::json> Repository::CreateTenant(const Caller& caller, std::string_view name) {
  if (!caller.IsHubAdmin()) return PermissionDenied("creating tenants needs the hub admin");
  RETURN_IF_ERROR(ValidateTenantName(name));
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  int64_t now = Now();
  ASSIGN_OR_RETURN(Statement insert,
                   db.Prepare("INSERT INTO tenants(name, created_at) VALUES (?, ?)"));
  Status inserted = insert.Bind(1, name).Bind(2, now).Run();
  if (inserted.code() == Code::kConflict) {
    return Conflict("tenant " + std::string(name) + " already exists");
  }
  RETURN_IF_ERROR(inserted);
  RETURN_IF_ERROR(AppendAudit(caller, "tenant.create", name, ""));
  RETURN_IF_ERROR(txn.Commit());
  return nlohmann::json{{"name", name}, {"created_at", FormatUnixSeconds(now)}};
}

Result<nlohmann::json> Repository::ListTenants(const Caller& caller) {
  if (!caller.IsHubAdmin()) return PermissionDenied("listing tenants needs the hub admin");
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(Statement rows,
                   db.Prepare("SELECT name, created_at FROM tenants ORDER BY name"));
  nlohmann::json tenants = nlohmann::json::array();
  while (true) {
    ASSIGN_OR_RETURN(bool more, rows.Step());
    if (!more) break;
    tenants.push_back(
        {{"name", rows.ColumnText(0)}, {"created_at", FormatUnixSeconds(rows.ColumnInt(1))}});
  }
  return nlohmann::json{{"tenants", tenants}};
}

Result<int64_t> Repository::FindTenantId(std::string_view name) {
  ConnectionPool::Lease lease = readers_->Acquire();
  return TenantId(lease.db(), name);
}

Result<nlohmann::json> Repository::CreateToken(const Caller& caller, std::string_view tenant,
                                               Role role, int64_t expires_in_s,
                                               std::string_view description) {
  if (caller.role != Role::kAdmin) return PermissionDenied("creating tokens needs an admin token");
  std::string target = tenant.empty() ? caller.tenant : std::string(tenant);
  if (target != caller.tenant && !caller.IsHubAdmin()) {
    return PermissionDenied("an admin of " + caller.tenant + " cannot create tokens for " + target);
  }
  constexpr int64_t kMaxExpiresInS = int64_t{100} * 365 * 24 * 3600;
  if (expires_in_s < 0 || expires_in_s > kMaxExpiresInS) {
    return InvalidArgument("expires_in_s must be between 0 (never) and " +
                           std::to_string(kMaxExpiresInS) + " (100 years)");
  }
  if (description.size() > 256) return InvalidArgument("description is over 256 characters");
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(int64_t tenant_id, TenantId(db, target));
  std::string token = std::string(kTokenPrefix) + RandomHex(32);
  int64_t now = Now();
  std::optional<int64_t> expires_at;
  if (expires_in_s > 0) expires_at = now + expires_in_s;
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement insert,
                   db.Prepare("INSERT INTO tokens(tenant_id, role, hash, description, "
                              "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)"));
  insert.Bind(1, tenant_id).Bind(2, RoleName(role)).Bind(3, Sha256Hex(token));
  RETURN_IF_ERROR(insert.Bind(4, description).Bind(5, now).Bind(6, expires_at).Run());
  int64_t id = db.LastInsertId();
  RETURN_IF_ERROR(AppendAudit(caller, "token.create", target,
                              "token " + std::to_string(id) + " role " + RoleName(role)));
  RETURN_IF_ERROR(txn.Commit());
  return nlohmann::json{{"id", id},
                        {"token", token},
                        {"tenant", target},
                        {"role", RoleName(role)},
                        {"expires_at", OptionalTime(expires_at)}};
}

Result<nlohmann::json> Repository::ListTokens(const Caller& caller, std::string_view tenant) {
  if (caller.role != Role::kAdmin) return PermissionDenied("listing tokens needs an admin token");
  std::string target = tenant.empty() ? caller.tenant : std::string(tenant);
  if (target != caller.tenant && !caller.IsHubAdmin()) {
    return PermissionDenied("an admin of " + caller.tenant + " cannot list tokens of " + target);
  }
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(int64_t tenant_id, TenantId(db, target));
  ASSIGN_OR_RETURN(Statement rows,
                   db.Prepare("SELECT id, role, description, created_at, expires_at, "
                              "revoked_at FROM tokens WHERE tenant_id = ? ORDER BY id"));
  rows.Bind(1, tenant_id);
  nlohmann::json tokens = nlohmann::json::array();
  while (true) {
    ASSIGN_OR_RETURN(bool more, rows.Step());
    if (!more) break;
    tokens.push_back({{"id", rows.ColumnInt(0)},
                      {"tenant", target},
                      {"role", rows.ColumnText(1)},
                      {"description", rows.ColumnText(2)},
                      {"created_at", FormatUnixSeconds(rows.ColumnInt(3))},
                      {"expires_at", OptionalTime(rows.ColumnOptionalInt(4))},
                      {"revoked_at", OptionalTime(rows.ColumnOptionalInt(5))}});
  }
  return nlohmann::json{{"tokens", tokens}};
}

Result<nlohmann::json> Repository::RevokeToken(const Caller& caller, int64_t token_id) {
  if (caller.role != Role::kAdmin) return PermissionDenied("revoking tokens needs an admin token");
  WriteLock lock(*this);
  Database& db = *db_;
  // A token of another tenant is "not found" for a tenant admin: token ids of
  // other tenants are not theirs to probe.
  ASSIGN_OR_RETURN(Statement find,
                   db.Prepare("SELECT t.name, k.revoked_at FROM tokens k JOIN tenants t ON "
                              "t.id = k.tenant_id WHERE k.id = ?"));
  find.Bind(1, token_id);
  ASSIGN_OR_RETURN(bool found, find.Step());
  std::string not_found = "token " + std::to_string(token_id) + " not found";
  if (!found) return NotFound(not_found);
  std::string tenant = find.ColumnText(0);
  if (tenant != caller.tenant && !caller.IsHubAdmin()) return NotFound(not_found);
  if (!find.ColumnIsNull(1))
    return Conflict("token " + std::to_string(token_id) + " is already revoked");
  int64_t now = Now();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement update, db.Prepare("UPDATE tokens SET revoked_at = ? WHERE id = ?"));
  RETURN_IF_ERROR(update.Bind(1, now).Bind(2, token_id).Run());
  RETURN_IF_ERROR(AppendAudit(caller, "token.revoke", tenant, "token " + std::to_string(token_id)));
  RETURN_IF_ERROR(txn.Commit());
  return nlohmann::json{{"id", token_id}, {"revoked_at", FormatUnixSeconds(now)}};
}

}  // namespace orrery
