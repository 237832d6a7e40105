#pragma once
// All-or-nothing changes to files: provisioning writes keys, bundles, the
// broker's passwd and ACL and an SD card's root in one transaction, so that
// a failure at any step leaves every one of them as it was.
#include <filesystem>
#include <string>
#include <vector>

namespace kairos::ctl {

class Transaction {
 public:
  Transaction() = default;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  // Not committed: every change made so far is undone.
  ~Transaction();

  // Creates dir and its missing parents (each with mode). An existing
  // directory, or a symlink to one, is kept as it is.
  void make_dirs(const std::filesystem::path& dir, unsigned mode = 0755);
  // Writes text to path (a new file, or one replacing an existing regular
  // file), through a temporary file and rename. Parents are created.
  void write(const std::filesystem::path& path, const std::string& text, unsigned mode);
  // Copies the regular file from to path, as write() does.
  void copy(const std::filesystem::path& from, const std::filesystem::path& path, unsigned mode);
  // Creates a symlink at path (nothing may be there, or the same symlink).
  void symlink(const std::filesystem::path& path, const std::string& target);

  // Keeps every change: removes the backups of replaced files.
  void commit();
  // Undoes every change, newest first.
  void rollback();
  // Paths written, created or linked, in order (for the summary).
  const std::vector<std::filesystem::path>& touched() const { return touched_; }

 private:
  enum class Kind { made_dir, created, replaced, linked };
  struct Undo {
    Kind kind;
    std::filesystem::path path;
    std::filesystem::path backup;  // replaced: the old file, renamed aside
  };
  void place(const std::filesystem::path& path, const std::filesystem::path& staged, unsigned mode);
  void step();  // counts one change; KAIROS_PROVISION_FAIL_AFTER=N fails the N+1th (fault injection)

  std::vector<Undo> undo_;
  std::vector<std::filesystem::path> touched_;
  bool done_ = false;
  long steps_ = 0;
};

}  // namespace kairos::ctl
