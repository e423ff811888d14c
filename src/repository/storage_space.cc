// Free space in the data directory (repository.h, "Storage space").
//
// Why a ballast file: on a full file system even a delete fails, because
// SQLite needs pages (WAL frames, a new audit row) to record it, and the
// space the delete would free is only freed after its commit. So the
// repository keeps a small file of its own, `catalog.reserve`, and gives it
// up the moment a catalog write finds the disk (almost) full: the write then
// has room, and the blobs it frees make room for the ballast again later.
// The free-space reserve (Options::min_free_bytes) keeps publishes from
// filling the disk in the first place; the ballast covers the disk being
// filled by something else.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "core/files.h"
#include "core/log.h"
#include "repository/repository.h"

namespace orrery {
namespace {

constexpr uint64_t kBallastBytes = 4ull << 20;

}  // namespace

std::filesystem::path Repository::BallastPath() const {
  return options_.data_dir / "catalog.reserve";
}

Result<Repository::StorageSpace> Repository::Space() const {
  struct statvfs info {};
  if (::statvfs(options_.data_dir.c_str(), &info) != 0) {
    return ErrnoStatus("statvfs " + options_.data_dir.string());
  }
  StorageSpace space;
  space.free_bytes = static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
  space.total_bytes = static_cast<uint64_t>(info.f_blocks) * info.f_frsize;
  space.reserve_bytes = options_.min_free_bytes;
  return space;
}

Status Repository::CheckRoomFor(uint64_t bytes) const {
  std::lock_guard lock(room_mutex_);
  return CheckRoomLocked(bytes);
}

Status Repository::CheckRoomLocked(uint64_t bytes) const {
  ASSIGN_OR_RETURN(StorageSpace space, Space());
  const uint64_t held = held_bytes_;
  uint64_t keep = space.reserve_bytes + held;
  if (space.free_bytes >= keep && space.free_bytes - keep >= bytes) return Status::Ok();
  return InsufficientStorage(
             "not enough storage space left on the server for this package (the hub keeps a "
             "reserve so that deletes still work; an operator can free space)")
      .WithDetail("publish refused: needs " + std::to_string(bytes) + " bytes, " +
                  std::to_string(space.free_bytes) + " free in " + options_.data_dir.string() +
                  ", reserve " + std::to_string(space.reserve_bytes) + ", held by publishes " +
                  std::to_string(held));
}

Result<Repository::RoomHold> Repository::HoldRoomFor(uint64_t bytes) {
  // Checked and held under one lock: two publishes cannot both pass on the
  // same free space.
  std::lock_guard lock(room_mutex_);
  RETURN_IF_ERROR(CheckRoomLocked(bytes));
  held_bytes_ += bytes;
  return RoomHold(this, bytes);
}

Repository::RoomHold::~RoomHold() {
  if (repository_ == nullptr) return;
  std::lock_guard lock(repository_->room_mutex_);
  repository_->held_bytes_ -= bytes_;
}

void Repository::GiveUpBallastIfFull() {
  Result<StorageSpace> space = Space();
  if (!space.ok() || space->free_bytes >= kBallastBytes) return;
  std::error_code error;
  if (!std::filesystem::remove(BallastPath(), error)) return;
  LogWarning("storage nearly full (" + std::to_string(space->free_bytes) +
             " bytes free in " + options_.data_dir.string() + "): gave up " +
             BallastPath().string() + " so that catalog writes (deletes) still work; free space "
             "with deletes and `orrery gc`");
}

void Repository::RestoreBallast() {
  std::error_code error;
  if (std::filesystem::exists(BallastPath(), error)) return;
  Result<StorageSpace> space = Space();
  if (!space.ok() || space->free_bytes < space->reserve_bytes + 2 * kBallastBytes) return;
  std::filesystem::path temp = BallastPath().string() + ".tmp";
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  bool written = fd.valid() && ::posix_fallocate(fd.get(), 0, kBallastBytes) == 0 &&
                 ::fsync(fd.get()) == 0 && ::rename(temp.c_str(), BallastPath().c_str()) == 0;
  if (!written) std::filesystem::remove(temp, error);
}

}  // namespace orrery
