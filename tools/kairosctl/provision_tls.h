#pragma once
// kairosctl provision's files for MQTT over TLS (docs/DESIGN.md 7): the
// folder's mesh CA, the broker's server certificate and each device's
// client certificate, kept while they fit and issued anew otherwise.
#include <cstdint>
#include <filesystem>
#include <string>

#include "tools/kairosctl/provision_plan.h"

namespace kairos::ctl {

// Where a device's TLS files go, in its bundle and on the device: the mesh
// CA as tls/ca.crt, its own certificate and key as tls/<stem>.crt and .key.
// The stem is fixed per kind (node, gateway) so that nodes set up alike
// keep one context hash; operators get theirs by name, as their password.
struct TlsNames {
  std::string stem;  // "node", "gateway", "operator-alice"
  std::string ca() const { return "/etc/kairos/tls/ca.crt"; }
  std::string cert() const { return "/etc/kairos/tls/" + stem + ".crt"; }
  std::string key() const { return "/etc/kairos/tls/" + stem + ".key"; }
};

// The mesh CA, PEM.
struct MeshCa {
  std::string cert, key;
};

// The folder's mesh CA (ca/ca.crt and ca/ca.key): made by the first TLS
// run, or one of your own put there before it. now: Unix time, s.
MeshCa mesh_ca(const std::filesystem::path& out, const std::string& mesh, std::int64_t now, Plan& plan);

// The broker's TLS files: the mesh CA, and a server certificate naming the
// host of the broker URI (plus localhost and 127.0.0.1 when that is it).
void broker_tls(const std::filesystem::path& mosq, const std::string& host, const MeshCa& ca, std::int64_t now,
                Plan& plan);

// A device's TLS files in its bundle (tls/ca.crt, tls/<stem>.crt and .key),
// its certificate for name; new_key replaces its key.
void device_tls(const std::filesystem::path& bundle, const TlsNames& names, const std::string& name, const MeshCa& ca,
                std::int64_t now, bool new_key, Plan& plan);

}  // namespace kairos::ctl
