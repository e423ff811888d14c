// JobStore on a real SQLite file: insert, compare-and-set transitions with
// their history, attempts, listing by tenant and state, and durability
// across reopening.
#include "jobs/job_store.h"

#include <gtest/gtest.h>

#include "core/files.h"

namespace orrery {
namespace {

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(std::filesystem::temp_directory_path(), "job-store-test-");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    auto store = JobStore::Open(dir_->path() / "jobs.db");
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(*store);
  }
  int64_t Add(int64_t tenant_id, const std::string& name) {
    JobRow row;
    row.tenant_id = tenant_id;
    row.tenant = "t" + std::to_string(tenant_id);
    row.name = name;
    row.spec = {{"name", name}};
    row.resolved = nlohmann::json::object();
    row.code_digest = "abc";
    row.submitted_by = 9;
    row.reason = "submitted";
    Result<int64_t> id = store_->Insert(row, 1000);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : 0;
  }
  std::optional<TempDir> dir_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobStoreTest, TransitionsOnlyFromTheExpectedStates) {
  int64_t id = Add(1, "a");
  Result<JobRow> job = store_->Get(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->spec["name"], "a");
  EXPECT_EQ(*store_->Transition(id, {JobState::kQueued}, JobState::kStarting, "picked", 1001), true);
  // A second mover expecting QUEUED loses: nothing is written.
  EXPECT_EQ(*store_->Transition(id, {JobState::kQueued}, JobState::kCancelled, "x", 1002), false);
  Result<int64_t> attempt = store_->BeginAttempt(id, "local", false, 1003);
  ASSERT_TRUE(attempt.ok());
  EXPECT_EQ(*attempt, 1);
  ASSERT_TRUE(store_->SetAttemptHandle(id, 1, "42:7").ok());
  EXPECT_TRUE(*store_->Transition(id, {JobState::kStarting}, JobState::kRunning, "started", 1004));
  ASSERT_TRUE(store_->EndAttempt(id, 1, "exit code 0", 1005).ok());
  EXPECT_TRUE(*store_->Transition(id, {JobState::kRunning}, JobState::kCompleted, "exit code 0", 1005));

  auto history = store_->History(id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 4u);
  EXPECT_EQ((*history)[0].state, JobState::kQueued);
  EXPECT_EQ((*history)[0].reason, "submitted");
  EXPECT_EQ((*history)[1].at_ms, 1001);
  EXPECT_EQ((*history)[3].state, JobState::kCompleted);
  EXPECT_EQ((*history)[3].attempt, 1);
  auto attempts = store_->Attempts(id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].handle, "42:7");
  EXPECT_EQ((*attempts)[0].outcome, "exit code 0");
  EXPECT_EQ((*attempts)[0].ended_at_ms, 1005);
  EXPECT_EQ(store_->Get(id + 100).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Transition(id + 100, {JobState::kQueued}, JobState::kFailed, "", 1).status().code(),
            Code::kNotFound);
}

TEST_F(JobStoreTest, CountsRestartsAndListsByTenantAndState) {
  int64_t a = Add(1, "a"), b = Add(2, "b"), c = Add(1, "c");
  EXPECT_EQ(*store_->BeginAttempt(a, "local", false, 1), 1);
  EXPECT_EQ(*store_->BeginAttempt(a, "local", true, 2), 2);
  EXPECT_EQ(store_->Get(a)->attempts, 2);
  EXPECT_EQ(store_->Get(a)->restarts, 1);
  ASSERT_TRUE(*store_->Transition(b, {JobState::kQueued}, JobState::kCancelled, "user", 3));
  auto tenant1 = store_->List(1, {}, 100);
  ASSERT_TRUE(tenant1.ok());
  ASSERT_EQ(tenant1->size(), 2u);
  EXPECT_EQ((*tenant1)[0].id, c);  // newest first
  auto queued = store_->List(0, {JobState::kQueued}, 100);
  ASSERT_EQ(queued->size(), 2u);
  auto cancelled = store_->List(0, {JobState::kCancelled, JobState::kFailed}, 100);
  ASSERT_EQ(cancelled->size(), 1u);
  EXPECT_EQ((*cancelled)[0].id, b);
}

TEST_F(JobStoreTest, SurvivesReopening) {
  int64_t id = Add(1, "a");
  ASSERT_TRUE(*store_->Transition(id, {JobState::kQueued}, JobState::kHalted, "halted", 5));
  store_.reset();
  auto store = JobStore::Open(dir_->path() / "jobs.db");
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Get(id)->state, JobState::kHalted);
  EXPECT_EQ((*store)->History(id)->size(), 2u);
}

TEST(JobStateTest, NamesRoundTrip) {
  for (JobState state : {JobState::kQueued, JobState::kStarting, JobState::kRunning,
                         JobState::kCompleted, JobState::kFailed, JobState::kCancelled,
                         JobState::kHalting, JobState::kHalted}) {
    EXPECT_EQ(*ParseJobState(JobStateName(state)), state);
  }
  EXPECT_EQ(ParseJobState("queued").status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(IsFinal(JobState::kCancelled));
  EXPECT_FALSE(IsFinal(JobState::kHalted));
  EXPECT_TRUE(HoldsResources(JobState::kHalting));
  EXPECT_FALSE(HoldsResources(JobState::kQueued));
}

}  // namespace
}  // namespace orrery
