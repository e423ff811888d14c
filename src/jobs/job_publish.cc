// Publishing a completed job's output as a new servable version, with its
// lineage (docs/jobs.md, "Publish"). The output directory is packed as it
// is (regular files only: a link or a special file refuses the publish, as
// does an output over the hub's package limits), with the spec's manifest
// as its orrery.yaml when the spec gives one, and published through the
// repository like any package: the publish check runs, and a refusal leaves
// the job COMPLETED with the reason in its history.
#include <fstream>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/random.h"
#include "jobs/job_service.h"
#include "repository/archive.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The regular files under `root`, sorted, as paths relative to it; a link
// or a special file is kUnprocessable naming it.
Result<std::vector<std::string>> OutputFiles(const fs::path& root) {
  std::vector<std::string> files;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(root, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    std::string relative = it->path().lexically_relative(root).string();  // links not followed
    fs::file_status status = it->symlink_status();
    if (fs::is_symlink(status)) {
      return Unprocessable("the output holds a link, " + relative + ": links are not published");
    }
    if (fs::is_directory(status)) continue;
    if (!fs::is_regular_file(status)) {
      return Unprocessable("the output holds " + relative + ", which is not a regular file");
    }
    files.push_back(relative);
  }
  if (error) return Internal("cannot list the job's output: " + error.message());
  std::sort(files.begin(), files.end());
  return files;
}

Status AddFileFrom(ArchiveWriter& writer, const std::string& name, const fs::path& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return Unprocessable("the output's " + name + " changed while it was packed");
  }
  std::ifstream in(path, std::ios::binary);
  return writer.AddFile(name, static_cast<uint64_t>(info.st_size), (info.st_mode & 0111) != 0,
                        [&](const ArchiveWriter::WriteFn& write) -> Status {
                          char buffer[1 << 16];
                          uint64_t left = static_cast<uint64_t>(info.st_size);
                          while (left > 0) {
                            in.read(buffer, static_cast<std::streamsize>(
                                                std::min<uint64_t>(left, sizeof buffer)));
                            if (in.gcount() <= 0) return Internal("short read of " + name);
                            RETURN_IF_ERROR(write(buffer, static_cast<size_t>(in.gcount())));
                            left -= static_cast<uint64_t>(in.gcount());
                          }
                          return Status::Ok();
                        });
}

// The manifest template's strings with ${job.id}, ${job.name} and
// ${metrics.KEY} (the last metrics line's KEY) filled in; other text, and
// any other ${...}, as it is.
json FillTemplate(const json& value, const JobRow& job, const json& metrics) {
  if (value.is_object() || value.is_array()) {
    json out = value;
    for (auto& item : out) item = FillTemplate(item, job, metrics);
    return out;
  }
  if (!value.is_string()) return value;
  const std::string& text = value.get_ref<const std::string&>();
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    size_t open = text.find("${", at);
    size_t close = open == std::string::npos ? open : text.find('}', open);
    if (close == std::string::npos) break;
    std::string key = text.substr(open + 2, close - open - 2);
    std::string filled = text.substr(open, close - open + 1);  // unknown: kept as written
    if (key == "job.id") {
      filled = std::to_string(job.id);
    } else if (key == "job.name") {
      filled = job.name;
    } else if (key.rfind("metrics.", 0) == 0 && metrics.is_object()) {
      auto found = metrics.find(key.substr(8));
      filled = found == metrics.end() ? "" : found->is_string() ? found->get<std::string>() : found->dump();
    }
    out += text.substr(at, open - at) + filled;
    at = close + 1;
  }
  return out + text.substr(std::min(at, text.size()));
}

}  // namespace

Lineage JobService::LineageOf(const JobRow& job, const json& metrics) {
  Lineage lineage;
  lineage.made_by = {{"job", job.id},
                     {"name", job.name},
                     {"tenant", job.tenant},
                     {"command", job.spec["command"]},
                     {"env", job.spec["env"]},
                     // The code's ref (a servable perhaps private to someone else) is in the
                     // inputs, which DescribeVersion shows only to those who may see it.
                     {"code_digest", job.code_digest},
                     {"metrics", metrics},
                     {"attempts", job.attempts},
                     {"completed_at", FormatUnixMillis(job.updated_at_ms)}};
  Result<JobSpec> spec = JobSpecFromJson(job.spec);
  LineageInput code_input{"code", "", PackageKind::kServable, {}, 0, job.code_digest};
  if (spec.ok() && spec->code_servable) {  // an upload has no ref, only its digest
    code_input.object = spec->code_servable->object;
    code_input.version = spec->code_servable->version.number;
  }
  lineage.inputs.push_back(code_input);
  if (spec.ok()) {
    for (const JobInput& input : spec->inputs) {
      lineage.inputs.push_back({"input", input.name, input.kind, input.object,
                                input.version.number,
                                job.resolved["inputs"][input.name].value("digest", "")});
    }
  }
  return lineage;
}

Result<json> JobService::PublishOutput(const Caller& caller, const JobRow& job,
                                       const JobPublish& target) {
  ASSIGN_OR_RETURN(json metrics_answer, Metrics(caller, job.id, 1));
  json metrics = metrics_answer["metrics"].empty() ? json() : metrics_answer["metrics"].back();
  fs::path output = workspace_.OutputDir(job.id);
  ASSIGN_OR_RETURN(std::vector<std::string> files, OutputFiles(output));
  bool own_manifest = !target.manifest.is_null();
  if (!own_manifest && std::find(files.begin(), files.end(), kManifestFileName) == files.end()) {
    return Unprocessable("the job's output has no " + std::string(kManifestFileName) +
                         " and its publish section gives no manifest");
  }
  fs::path archive = repository_.TempRoot() / ("job-publish-" + RandomHex(8) + ".tar");
  struct Remove {
    fs::path path;
    ~Remove() {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  } remove{archive};
  ASSIGN_OR_RETURN(std::unique_ptr<ArchiveWriter> writer, ArchiveWriter::Create(archive, false));
  if (own_manifest) {
    json manifest = FillTemplate(target.manifest, job, metrics);
    manifest["name"] = target.servable;
    std::string text = manifest.dump(2) + "\n";
    RETURN_IF_ERROR(writer->AddFile(kManifestFileName, text.size(), false,
                                    [&](const ArchiveWriter::WriteFn& write) {
                                      return write(text.data(), text.size());
                                    }));
  }
  for (const std::string& file : files) {
    if (own_manifest && file == kManifestFileName) continue;  // the spec's manifest wins
    RETURN_IF_ERROR(AddFileFrom(*writer, file, output / file));
  }
  RETURN_IF_ERROR(writer->Finish());
  PublishOptions options;
  options.lineage = LineageOf(job, metrics);
  ASSIGN_OR_RETURN(PublishResult published,
                   repository_.Publish(caller, PackageKind::kServable,
                                       {job.tenant, target.servable}, archive, options));
  std::string ref = job.tenant + "/" + target.servable + ":" +
                    std::to_string(published.version.value("version", int64_t{0}));
  RETURN_IF_ERROR(store_->SetPublished(job.id, ref));
  return published.version;
}

Result<json> JobService::Publish(const Caller& caller, int64_t id, const json& request) {
  ASSIGN_OR_RETURN(JobRow job, Changeable(caller, id));
  if (job.state != JobState::kCompleted) {
    return Conflict("job " + std::to_string(id) + " is " + JobStateName(job.state) +
                    ": only a COMPLETED job's output is published");
  }
  ASSIGN_OR_RETURN(JobSpec spec, JobSpecFromJson(job.spec));
  JobPublish target = spec.publish.value_or(JobPublish{});
  if (request.is_object()) {
    if (request.contains("servable")) {
      if (!request["servable"].is_string()) return InvalidArgument("servable must be a string");
      target.servable = request["servable"].get<std::string>();
    }
    if (request.contains("manifest")) target.manifest = request["manifest"];
  }
  if (target.servable.empty()) {
    return Unprocessable("job " + std::to_string(id) +
                         " has no publish section: name the servable ({\"servable\": NAME})");
  }
  RETURN_IF_ERROR(ValidateObjectName(target.servable));
  if (!target.manifest.is_null() && !target.manifest.is_object()) {
    return InvalidArgument("manifest must be a JSON object (an orrery.yaml)");
  }
  ASSIGN_OR_RETURN(json version, PublishOutput(caller, job, target));
  NotePublish(job, "published as " + job.tenant + "/" + target.servable + ":" +
                       std::to_string(version.value("version", int64_t{0})));
  return json{{"job", id}, {"version", version}};
}

void JobService::NotePublish(const JobRow& job, const std::string& what) {
  std::string base = job.reason.substr(0, job.reason.find("; publish"));
  (void)store_->Transition(job.id, {JobState::kCompleted}, JobState::kCompleted, base + "; " + what,
                           NowMs());
}

void JobService::AutoPublish(int64_t id) {
  Result<JobRow> job = store_->Get(id);
  if (!job.ok() || job->state != JobState::kCompleted) return;
  Result<JobSpec> spec = JobSpecFromJson(job->spec);
  if (!spec.ok() || !spec->publish) return;
  Result<json> version = PublishOutput(OwnerOf(*job), *job, *spec->publish);
  NotePublish(*job, version.ok() ? "published as " + job->tenant + "/" + spec->publish->servable +
                                       ":" + std::to_string(version->value("version", int64_t{0}))
                                 : "publish refused: " + version.status().message());
}

}  // namespace orrery
