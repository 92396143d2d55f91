// Output that runs out of space or turns read-only mid-run (issue 15): the
// training run stops with a message naming the failed write and the last good
// checkpoint, leaves that checkpoint (and no partial file) in place, and once
// space is back `tokenrl train --resume` finishes it with a metrics.csv
// byte-identical to an uninterrupted run. Three ways to take the space:
//  * FileSizeLimit: RLIMIT_FSIZE (`ulimit -f`) between the first and second
//    checkpoint's size, SIGXFSZ ignored, so that write fails with EFBIG. Needs
//    no privileges: always runs.
//  * FullTmpfs: a tmpfs with room for two checkpoints but not a third; then it
//    is grown (`mount -o remount,size=`). Needs mount rights (root): skipped
//    without them.
//  * DirectoryTurnsReadOnly: while the run is stopped (SIGSTOP) after its
//    first checkpoint, its directories are made immutable (chattr +i; a
//    non-root user's chmod a-w where chattr is missing), then writable again.
//    (A read-only remount is refused while the run holds metrics.csv open.)

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "testing/process.h"
#include "tokenrl/core/file_util.h"

namespace tokenrl {
namespace {

namespace fs = std::filesystem;
using testing::RunShell;
using testing::ShellResult;
using testing::SpawnProcess;
using testing::WaitProcess;

// 5,000 steps of the quick config; checkpoints every 1,000 (their size grows
// with the replay), metrics rows every 500.
std::string TrainCommand(const std::string& out, const std::string& extra = "") {
  return std::string(TOKENRL_BINARY) + " train --config " + TOKENRL_SOURCE_DIR +
         "/configs/train/minatar_breakout_quick.toml --set schedule.total_env_steps=5000"
         " --set schedule.log_every_env_steps=500 --set schedule.checkpoint_every_env_steps=1000"
         " --set schedule.eval_every_env_steps=0 --out " + out + " -q " + extra;
}

std::string Ckpt(const std::string& dir, int steps) {
  char name[32];
  std::snprintf(name, sizeof(name), "ckpt-%012d.bin", steps);
  return dir + "/checkpoints/" + name;
}

class TrainDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "/train_disk_full_" + std::to_string(getpid());
    fs::remove_all(root_);
    fs::create_directories(root_);
    // The uninterrupted run, keeping every checkpoint to learn their sizes.
    clean_ = root_ + "/clean";
    const ShellResult r = RunShell(TrainCommand(clean_, "--set schedule.keep_checkpoints=10"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (int steps : {1000, 2000, 3000}) sizes_.push_back(fs::file_size(Ckpt(clean_, steps)));
    ASSERT_LT(sizes_[0] + 16384, sizes_[1]) << "checkpoints must grow for the size limit to fall between them";
  }
  void TearDown() override {
    if (!undo_.empty()) RunShell(undo_);
    if (!mount_.empty()) RunShell("umount " + mount_);
    fs::remove_all(root_);
  }

  bool MountTmpfs(const std::string& dir, uint64_t bytes) {
    fs::create_directories(dir);
    if (RunShell("mount -t tmpfs -o size=" + std::to_string(bytes) + " tokenrl-test " + dir).exit_code != 0) {
      return false;
    }
    mount_ = dir;
    return true;
  }

  // The stopped run's message and files; then resuming finishes it identically.
  void ExpectStoppedThenResumes(const ShellResult& stopped, const std::string& out, int last_good_steps,
                                const std::string& error_text) {
    EXPECT_NE(stopped.exit_code, 0) << stopped.output;
    EXPECT_NE(stopped.output.find("training stopped at env step"), std::string::npos) << stopped.output;
    EXPECT_NE(stopped.output.find(error_text), std::string::npos) << stopped.output;
    EXPECT_NE(stopped.output.find("last good checkpoint: " + Ckpt(out, last_good_steps)), std::string::npos)
        << stopped.output;
    EXPECT_NE(stopped.output.find("then continue with --resume"), std::string::npos) << stopped.output;
    EXPECT_TRUE(fs::exists(Ckpt(out, last_good_steps)));
    for (const auto& e : fs::directory_iterator(out + "/checkpoints")) {
      EXPECT_NE(e.path().extension(), ".tmp") << "a partial file was left: " << e.path();
    }
    EXPECT_FALSE(fs::exists(out + "/DONE"));
  }
  void ExpectResumeMatchesClean(const std::string& out) {
    const ShellResult r = RunShell(std::string(TOKENRL_BINARY) + " train --resume " + out + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(out + "/DONE"));
    EXPECT_EQ(*ReadFile(out + "/metrics.csv"), *ReadFile(clean_ + "/metrics.csv"));
  }

  std::string root_, clean_, mount_, undo_;
  std::vector<uint64_t> sizes_;
};

TEST_F(TrainDiskFullTest, FileSizeLimit) {
  const std::string out = root_ + "/limited";
  const uint64_t limit_kib = (sizes_[0] + sizes_[1]) / 2 / 1024;
  // bash's `ulimit -f` counts KiB (dash's counts 512-byte blocks).
  const ShellResult stopped = RunShell("bash -c \"trap '' XFSZ; ulimit -f " + std::to_string(limit_kib) + "; exec " +
                                       TrainCommand(out) + "\"");
  ExpectStoppedThenResumes(stopped, out, 1000, "File too large");
  ExpectResumeMatchesClean(out);
}

TEST_F(TrainDiskFullTest, FullTmpfs) {
  const std::string out = root_ + "/tmpfs/run";
  // Two checkpoints and the small files fit; a third checkpoint does not.
  if (!MountTmpfs(root_ + "/tmpfs", sizes_[0] + sizes_[1] + 256 * 1024)) {
    GTEST_SKIP() << "SKIPPED: cannot mount a tmpfs here (needs root); FileSizeLimit covers the failure path";
  }
  const ShellResult stopped = RunShell(TrainCommand(out));
  ExpectStoppedThenResumes(stopped, out, 2000, "No space left on device");
  ASSERT_EQ(RunShell("mount -o remount,size=256m " + mount_).exit_code, 0);
  ExpectResumeMatchesClean(out);
}

TEST_F(TrainDiskFullTest, DirectoryTurnsReadOnly) {
  const std::string out = root_ + "/readonly";
  const pid_t shell = SpawnProcess({"/bin/sh", "-c", "exec " + TrainCommand(out) + " > " + root_ + "/ro.log 2>&1"},
                                   "/dev/null");
  // Freeze the run right after its first checkpoint, make its directories
  // unwritable, let it go on.
  bool frozen = false;
  for (int i = 0; i < 20000 && !frozen; ++i) {
    if (fs::exists(Ckpt(out, 1000))) {
      frozen = kill(shell, SIGSTOP) == 0;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ASSERT_TRUE(frozen) << "the run never wrote its first checkpoint";
  int last_good = 0;
  for (int steps = 1000; steps <= 5000; steps += 1000) {
    if (fs::exists(Ckpt(out, steps))) last_good = steps;
  }
  const bool done_before = fs::exists(out + "/DONE");
  const std::string dirs = out + " " + out + "/checkpoints";
  // Immutable directories refuse new files even to root (ext4, xfs, btrfs);
  // without chattr, a non-root user's chmod does the same.
  std::string make_writable;
  if (RunShell("chattr +i " + dirs).exit_code == 0) {
    make_writable = "chattr -i " + dirs;
    undo_ = make_writable;
  } else if (getuid() != 0 && RunShell("chmod a-w " + dirs).exit_code == 0) {
    make_writable = "chmod u+w " + dirs;
    undo_ = make_writable;
  }
  kill(shell, SIGCONT);
  const int code = WaitProcess(shell);
  if (make_writable.empty()) GTEST_SKIP() << "SKIPPED: cannot make a directory read-only here (no chattr, root)";
  ASSERT_FALSE(done_before) << "the run finished before its directory turned read-only";
  ASSERT_EQ(RunShell(make_writable).exit_code, 0);
  undo_.clear();
  const ShellResult stopped{code, *ReadFile(root_ + "/ro.log")};
  ExpectStoppedThenResumes(stopped, out, last_good, "cannot create");
  ExpectResumeMatchesClean(out);
}

}  // namespace
}  // namespace tokenrl
