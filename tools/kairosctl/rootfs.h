#pragma once
// kairosctl provision --rootfs: installs a node onto a mounted SD card's
// root file system through the card's own layout (merged /usr symlinks are
// followed, never replaced), after checking the card's architecture and
// bringing the runtime packages it lacks. Planning reads only; applying
// goes through a Transaction, so a refusal or a failure changes nothing.
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/kairosctl/debian.h"
#include "tools/kairosctl/transaction.h"

namespace kairos::ctl {

// A refusal that names what to do; provisioning exits with `status`.
struct Refusal : std::runtime_error {
  Refusal(const std::string& message, int exit_status = 1) : std::runtime_error(message), status(exit_status) {}
  int status;
};

// The host path of `path` (absolute, as seen on the booted card) inside
// root, following the card's symlinks as the card would (absolute targets
// are taken relative to root; nothing resolves outside it). The last
// component is followed only when follow_last.
std::filesystem::path card_path(const std::filesystem::path& root, const std::string& path, bool follow_last = true);

// What the card says about itself.
struct Card {
  std::filesystem::path root;
  std::string arch;         // Debian architecture of its userland
  std::string arch_source;  // where that was read
  std::string os;           // PRETTY_NAME of its os-release, or ""
  std::string os_id;        // ID of its os-release (raspbian, debian, ...)
  std::string status_text;  // var/lib/dpkg/status
  std::vector<deb::Stanza> status;
};
// Reads the card; a Refusal when it is not a root file system or its
// architecture cannot be told.
Card read_card(const std::filesystem::path& root);

// A .deb and its control fields.
struct DebFile {
  std::filesystem::path path;
  deb::Stanza control;
};
DebFile read_deb(const std::filesystem::path& path);

struct RootfsRequest {
  std::filesystem::path root;
  std::filesystem::path node_deb;     // kairos-node for the card's architecture
  std::filesystem::path boards_deb;   // kairos-boards (all)
  std::filesystem::path deps_dir;     // .debs of runtime dependencies for the card's architecture
  std::vector<std::string> board_arches;  // what the board runs ("native": anything)
  std::string board;
  bool wifi = false;
  // Files of the bundle: path on the card -> (content, mode).
  std::map<std::string, std::pair<std::string, unsigned>> files;
};

// The install, planned: every check done, the packages unpacked into a
// scratch directory, every change listed.
class RootfsPlan {
 public:
  ~RootfsPlan();
  RootfsPlan(RootfsPlan&&) noexcept = default;
  // The packages installed, in order (dependencies first).
  const std::vector<DebFile>& packages() const { return packages_; }
  const Card& card() const { return card_; }
  // Applies the plan through tx.
  void apply(Transaction& tx) const;

 private:
  friend RootfsPlan plan_rootfs(const RootfsRequest& request, Card card);
  RootfsPlan() = default;
  struct Op {
    enum class Kind { dir, file, text, link } kind;
    std::filesystem::path dest;    // host path inside the card
    std::filesystem::path source;  // file: the unpacked one
    std::string text;              // text: the content; link: the target
    unsigned mode = 0644;
  };
  Card card_;
  std::vector<DebFile> packages_;
  std::vector<Op> ops_;
  std::filesystem::path scratch_;
};

// Checks the card (as read_card read it), the packages and the board; finds
// the dependencies the card lacks; plans every change. Throws Refusal
// (nothing changed).
RootfsPlan plan_rootfs(const RootfsRequest& request, Card card);

}  // namespace kairos::ctl
