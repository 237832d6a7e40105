#include "tools/kairosctl/provision_tls.h"

#include <algorithm>
#include <vector>

#include "common/core/broker.h"
#include "common/core/x509.h"
#include "common/io/files.h"
#include "tools/kairosctl/certs.h"
#include "tools/kairosctl/rootfs.h"

namespace kairos::ctl {

namespace fs = std::filesystem;

namespace {

// Certificates: the mesh CA for 10 years, devices and the broker for 2,
// renewed by any run in their last 30 days; valid from an hour back, for
// clocks a little behind.
constexpr std::int64_t kDayS = 86400;
constexpr std::int64_t kCaDays = 3652;
constexpr std::int64_t kCertDays = 730;
constexpr std::int64_t kRenewDays = 30;
constexpr std::int64_t kBackdateS = 3600;

// A PEM key at path: kept when it reads (unless renew), a new one otherwise.
std::string tls_key_pem(const fs::path& path, bool renew, Plan& plan) {
  std::string old = read_file_or_empty(path), why;
  if (!old.empty() && !renew && read_private_key(old, why)) return old;
  if (!old.empty())
    plan.notes.push_back("a new TLS key " + path.string() + (renew ? " (--new-key)" : " (the old one did not read)"));
  return new_ec_key();
}

// The certificate at path: kept while it fits (the CA's, for key, the
// names of spec, more than 30 days left), issued anew otherwise.
std::string tls_cert_pem(const fs::path& path, CertSpec spec, const std::string& key, const MeshCa& ca, std::int64_t now,
                         Plan& plan) {
  std::string old = read_file_or_empty(path), why;
  if (!old.empty()) {
    std::string reason;
    auto f = read_cert(old, why);
    auto sorted = [](std::vector<std::string> v) {
      std::sort(v.begin(), v.end());
      return v;
    };
    if (!f) reason = "it did not read";
    else if (!issued_by(old, ca.cert)) reason = "it is not signed by the mesh CA";
    else if (!key_fits_cert(old, key)) reason = "its key changed";
    else if (f->common_name != spec.common_name || sorted(f->dns_names) != sorted(spec.dns_names) ||
             f->ip_addresses.size() != spec.ip_addresses.size())
      reason = "its names changed";
    else if (f->not_after_s - now < kRenewDays * kDayS)
      reason = std::string(f->not_after_s < now ? "it expired on " : "it expires on ") + utc_text(f->not_after_s);
    else if (f->not_before_s > now)
      reason = "it is not valid before " + utc_text(f->not_before_s);
    if (reason.empty()) return old;
    plan.notes.push_back("a new certificate " + path.string() + ": " + reason);
  }
  spec.not_before_s = now - kBackdateS;
  spec.not_after_s = now + kCertDays * kDayS;
  return issue_cert(spec, key, ca.cert, ca.key);
}

// dir/ca.crt, and dir/<stem>.key with dir/<stem>.crt for spec.
void key_and_cert(const fs::path& dir, const std::string& stem, const CertSpec& spec, const MeshCa& ca,
                  std::int64_t now, bool new_key, Plan& plan) {
  std::string key = tls_key_pem(dir / (stem + ".key"), new_key, plan);
  std::string cert = tls_cert_pem(dir / (stem + ".crt"), spec, key, ca, now, plan);
  plan.files[dir / "ca.crt"] = {ca.cert, 0644};
  plan.files[dir / (stem + ".key")] = {key, 0600};
  plan.files[dir / (stem + ".crt")] = {cert, 0644};
}

}  // namespace

MeshCa mesh_ca(const fs::path& out, const std::string& mesh, std::int64_t now, Plan& plan) {
  const fs::path crt = out / "ca/ca.crt", key = out / "ca/ca.key";
  const bool have_crt = fs::exists(crt), have_key = fs::exists(key);
  if (have_crt != have_key)
    throw Refusal("provision: " + (have_crt ? key : crt).string() + " is missing: the mesh CA is " + crt.string() +
                  " with " + key.string() +
                  ", both or neither (neither: a new CA, and every device needs its certificates again)");
  if (have_crt) {
    MeshCa ca{read_file_or_empty(crt), read_file_or_empty(key)};
    std::string why;
    auto facts = read_cert(ca.cert, why);
    if (!facts) throw Refusal("provision: " + crt.string() + ": " + why);
    if (!facts->is_ca)
      throw Refusal("provision: " + crt.string() + " is not a CA certificate (basicConstraints CA:TRUE)");
    if (!read_private_key(ca.key, why)) throw Refusal("provision: " + key.string() + ": " + why);
    if (!key_fits_cert(ca.cert, ca.key))
      throw Refusal("provision: " + key.string() + " is not the key of " + crt.string());
    if (validity_at(*facts, now) != Validity::valid)
      throw Refusal("provision: the mesh CA " + crt.string() + " is valid " + utc_text(facts->not_before_s) + " to " +
                    utc_text(facts->not_after_s) + ", not now (" + utc_text(now) +
                    "): replace it (README: \"MQTT over TLS\", rotation) or check this machine's clock");
    if (facts->not_after_s - now < 365 * kDayS)
      plan.notes.push_back("the mesh CA " + crt.string() + " expires on " + utc_text(facts->not_after_s) +
                           ": plan its rotation (README: \"MQTT over TLS\")");
    return ca;
  }
  MeshCa ca;
  ca.key = new_ec_key();
  CertSpec spec;
  spec.kind = CertSpec::Kind::ca;
  spec.common_name = "Kairos mesh " + mesh + " CA";
  spec.organization = "Kairos mesh " + mesh;
  spec.not_before_s = now - kBackdateS;
  spec.not_after_s = now + kCaDays * kDayS;
  ca.cert = issue_cert(spec, ca.key, "", "");
  plan.files[key] = {ca.key, 0600};
  plan.files[crt] = {ca.cert, 0644};
  plan.notes.push_back("made the mesh CA " + crt.string() + "; its key " + key.string() +
                       " signs every certificate of the mesh: keep it with this folder's secrets, never on a device");
  return ca;
}

void broker_tls(const fs::path& mosq, const std::string& host, const MeshCa& ca, std::int64_t now, Plan& plan) {
  CertSpec spec;
  spec.kind = CertSpec::Kind::server;
  spec.common_name = host;
  if (host_is_ip(host)) spec.ip_addresses = {host};
  else spec.dns_names = {host};
  if (host == "localhost") spec.ip_addresses = {"127.0.0.1", "::1"};
  if (host == "127.0.0.1" || host == "::1") spec.dns_names = {"localhost"};
  key_and_cert(mosq, "server", spec, ca, now, false, plan);
}

void device_tls(const fs::path& bundle, const TlsNames& names, const std::string& name, const MeshCa& ca,
                std::int64_t now, bool new_key, Plan& plan) {
  CertSpec spec;
  spec.kind = CertSpec::Kind::client;
  spec.common_name = name;
  key_and_cert(bundle / "tls", names.stem, spec, ca, now, new_key, plan);
}

}  // namespace kairos::ctl
