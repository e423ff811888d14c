// `orrery publish` and `orrery download`: packages moving between a
// directory and the hub, streamed through a scratch file, never held in memory.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <iostream>
#include <limits>
#include <set>

#include <yaml-cpp/yaml.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/url.h"
#include "core/files.h"
#include "core/hash.h"
#include "repository/archive.h"
#include "repository/manifest.h"
#include "repository/yaml_load.h"

namespace orrery::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---- publish ----

struct PublishArgs {
  std::string dir;
  std::string name;  // --name: tenant/name or name
  std::string kind;  // --kind
  bool make_public = false;
  bool if_changed = false;
  bool zstd = false;
  bool no_check = false;
  bool dry_run = false;
  bool verbose = false;
};

// What a package directory's orrery.yaml says the package is.
struct LocalPackage {
  std::string name, kind;
  std::vector<std::string> selection;  // what to pack: orrery.yaml, README.md, the listed files
};

// Reads DIR/orrery.yaml, checked as the hub checks it, so that a mistake is
// reported before anything is packed or sent.
Result<LocalPackage> ReadLocalPackage(const fs::path& dir) {
  fs::path manifest_path = dir / kManifestFileName;
  if (!fs::exists(manifest_path)) {
    return InvalidArgument(dir.string() + " has no " + kManifestFileName +
                           ": a package directory holds one that names the package and lists "
                           "its files (docs/manifest.md)");
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(manifest_path));
  Result<Manifest> manifest = ParseManifest(text);
  if (!manifest.ok()) return manifest.status().WithContext(manifest_path.string());
  LocalPackage package;
  package.name = manifest->name;
  package.kind = PackageKindName(manifest->kind);
  package.selection.push_back(kManifestFileName);
  if (fs::is_regular_file(dir / kModelCardFileName))
    package.selection.push_back(kModelCardFileName);
  for (const ManifestFile& file : manifest->files) package.selection.push_back(file.path);
  return package;
}

void PrintPublished(const ObjectRef& ref, const json& version) {
  std::string what = ref.tenant + "/" + ref.name + " version " + Field(version, "version");
  if (version.value("dry_run", false)) {
    size_t files = version.contains("files") ? version["files"].size() : 0;
    std::string checks = version["checked"].is_null()     ? "no checks apply"
                         : version["checked"].get<bool>() ? "its checks pass"
                                                          : "checks skipped";
    std::cout << "dry run: " << ref.tenant << "/" << ref.name << " would be published (" << files
              << (files == 1 ? " file, " : " files, ") << HumanSize(version.value("size", 0ull))
              << "); " << checks << "; nothing was stored" << std::endl;
    return;
  }
  if (version.value("unchanged", false)) {
    std::cout << "unchanged: " << what << std::endl;
    return;
  }
  size_t files = version.contains("files") ? version["files"].size() : 0;
  std::cout << "published " << what << " (digest " << Field(version, "digest") << ", " << files
            << (files == 1 ? " file, " : " files, ") << HumanSize(version.value("size", 0ull))
            << (version.value("checked", json()) == json(false) ? ", unchecked" : "") << ")"
            << std::endl;
}

Status RunPublish(ApiClient& api, const ClientOptions& options, PublishArgs args) {
  if (!fs::is_directory(args.dir)) return InvalidArgument(args.dir + " is not a directory");
  ASSIGN_OR_RETURN(LocalPackage local, ReadLocalPackage(args.dir));
  if (args.name.empty()) args.name = local.name;
  if (args.kind.empty()) args.kind = local.kind;
  ASSIGN_OR_RETURN(ObjectRef ref, ParseObjectRef(args.name, /*allow_version=*/false));
  ASSIGN_OR_RETURN(std::string kind, PluralKind(args.kind));
  RETURN_IF_ERROR(api.CompleteTenant(ref));

  ASSIGN_OR_RETURN(TempDir scratch, TempDir::Create(fs::temp_directory_path(), "orrery-"));
  fs::path package = scratch.path() / (args.zstd ? "package.tar.zst" : "package.tar");
  Result<std::vector<std::string>> packed =
      PackSelection(args.dir, local.selection, package, args.zstd);
  if (!packed.ok() && packed.status().code() == Code::kNotFound) {
    return InvalidArgument(std::string(kManifestFileName) +
                           " lists files that are missing: " + packed.status().message());
  }
  if (!packed.ok()) return packed.status();
  if (args.verbose) {
    for (const std::string& path : *packed) std::cerr << "packing " << path << "\n";
  }
  ASSIGN_OR_RETURN(std::string digest, Sha256OfFile(package));
  Query query = {{"visibility", args.make_public ? "public" : ""},
                 {"if_changed", args.if_changed ? "true" : ""},
                 {"check", args.no_check ? "false" : ""},
                 {"dry_run", args.dry_run ? "true" : ""}};
  ASSIGN_OR_RETURN(
      json version,
      api.Upload(ApiPath({kind, ref.tenant, ref.name, "versions"}, query), package,
                 {{"Content-Type", args.zstd ? "application/zstd" : "application/x-tar"},
                  {"X-Orrery-Sha256", digest}}));
  if (options.json) {
    PrintJson(version);
  } else {
    PrintPublished(ref, version);
  }
  return Status::Ok();
}

// ---- download ----

struct DownloadArgs {
  std::string ref;
  std::string output;  // -o
  std::string kind;
};

// The package digest of docs/api.md: SHA-256 of "<sha256>  <path>\n" sorted by path.
std::string PackageDigest(std::vector<std::pair<std::string, std::string>> path_and_sha) {
  std::sort(path_and_sha.begin(), path_and_sha.end());
  Sha256 hash;
  for (const auto& [path, sha] : path_and_sha) hash.Update(sha + "  " + path + "\n");
  return hash.FinishHex();
}

// Every file the version object lists is in `dir` with its sha256, no other
// file is (except a root orrery.yaml the list may leave out), and the listed
// digests add up to the version's digest. Returns the problems found.
std::vector<std::string> VerifyPackage(const fs::path& dir, const json& version) {
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, std::string>> listed;
  std::set<std::string> paths;
  for (const json& file : version.value("files", json::array())) {
    std::string path = Field(file, "path");
    std::string expected = Field(file, "sha256");
    listed.emplace_back(path, expected);
    paths.insert(path);
    Result<std::string> actual = Sha256OfFile(dir / path);
    if (!actual.ok()) {
      problems.push_back(path + ": " + actual.status().message());
    } else if (*actual != expected) {
      problems.push_back(path + ": sha256 " + *actual + ", expected " + expected);
    }
  }
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    std::string path = entry.path().lexically_relative(dir).generic_string();
    if (entry.is_regular_file() && !paths.count(path) && path != kManifestFileName) {
      problems.push_back(path + ": not in the version's file list");
    }
  }
  if (PackageDigest(listed) != Field(version, "digest")) {
    problems.push_back("the file list does not add up to the package digest");
  }
  return problems;
}

Status RunDownload(ApiClient& api, const ClientOptions& options, const DownloadArgs& args) {
  ASSIGN_OR_RETURN(Target target, ResolveTarget(api, args.ref, args.kind, true));
  ObjectRef& ref = target.ref;
  std::string requested = ref.version ? ref.version->ToString() : "latest";
  ASSIGN_OR_RETURN(
      json version,
      api.Call("GET", ApiPath({target.kind, ref.tenant, ref.name, "versions", requested})));
  std::string number = Field(version, "version");
  fs::path destination =
      args.output.empty() ? fs::path(ref.name + "-" + number) : fs::path(args.output);
  if (fs::exists(destination)) {
    return InvalidArgument(destination.string() + " already exists; choose another with -o");
  }
  ASSIGN_OR_RETURN(TempDir scratch, TempDir::Create(fs::temp_directory_path(), "orrery-"));
  fs::path archive = scratch.path() / "package.tar";
  RETURN_IF_ERROR(api.Download(
      ApiPath({target.kind, ref.tenant, ref.name, "versions", number, "archive"}), archive));
  ArchiveLimits limits;
  limits.max_entries = std::numeric_limits<uint64_t>::max();
  limits.max_total_bytes = std::max<uint64_t>(version.value("size", 0ull), limits.max_total_bytes);
  RETURN_IF_ERROR(ExtractPackageArchive(archive, destination, limits));

  std::string what = ref.tenant + "/" + ref.name + ":" + number;
  std::vector<std::string> problems = VerifyPackage(destination, version);
  if (!problems.empty()) {
    std::error_code ignored;
    fs::remove_all(destination, ignored);
    std::string message = what + " failed verification, removed " + destination.string() + ":";
    for (const std::string& problem : problems) message += "\n  " + problem;
    return DataLoss(message);
  }
  if (options.json) {
    PrintJson(version);
  } else {
    std::cout << "downloaded " << what << " into " << destination.string() << " ("
              << version.value("files", json::array()).size() << " files, "
              << HumanSize(version.value("size", 0ull)) << ", sha256 verified)" << std::endl;
  }
  return Status::Ok();
}

}  // namespace

void AddPackageCommands(CLI::App& app, CommandSet& set) {
  auto publish = std::make_shared<PublishArgs>();
  CLI::App* p = AddClientCommand(
      app, set, "publish",
      "Publish DIR as a new version. DIR/orrery.yaml names the package and its kind unless "
      "--name/--kind say otherwise; the tenant defaults to the token's. Packed are orrery.yaml, "
      "README.md (the model card) when present, and exactly the files orrery.yaml lists (a "
      "listed directory with its contents, but never __pycache__, .ipynb_checkpoints or .git), "
      "into a temporary tar sent with its SHA-256. The hub loads a servable and runs its "
      "manifest's examples before the version becomes visible (--no-check skips that).",
      [publish](ApiClient& api, const ClientOptions& o) { return RunPublish(api, o, *publish); });
  p->add_option("DIR", publish->dir, "package directory (holds orrery.yaml)")->required();
  p->add_option("--name", publish->name, "tenant/name or name (default: the manifest's name)");
  p->add_option("--kind", publish->kind, "servable or dataset (default: the manifest's kind)");
  p->add_flag("--public", publish->make_public, "make a new object public (default private)");
  p->add_flag("--if-changed", publish->if_changed,
              "publish nothing if the content equals the latest version");
  p->add_flag("--zstd", publish->zstd, "compress the upload with zstd");
  p->add_flag("--no-check", publish->no_check,
              "do not load the servable and run its examples before publishing (the version is "
              "marked unchecked)");
  p->add_flag("--dry-run", publish->dry_run,
              "run every check the hub runs (manifest, files, loading, examples) and publish "
              "nothing");
  p->add_flag("-v,--verbose", publish->verbose, "list the files packed (on stderr)");

  auto download = std::make_shared<DownloadArgs>();
  CLI::App* d = AddClientCommand(
      app, set, "download",
      "Download a version into a new directory and verify it. Without a version, latest; after "
      "unpacking, every file's SHA-256 is checked against the hub's record, and on a mismatch the "
      "directory is removed and the command fails.",
      [download](ApiClient& api, const ClientOptions& o) {
        return RunDownload(api, o, *download);
      });
  d->add_option("REF", download->ref, "tenant/name[:version] or name[:version]")->required();
  d->add_option("-o,--output", download->output,
                "directory to create (default ./<name>-<version>; must not exist)");
  d->add_option("--kind", download->kind, "servable or dataset (default: whichever exists)");
}

}  // namespace orrery::cli
