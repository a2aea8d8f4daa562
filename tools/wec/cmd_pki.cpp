// `wec pki`: a small PKI for WEF over HTTPS (hosts outside a domain). `init` makes a CA and the
// collector's server certificate and prints the GPO string; `client` issues a certificate for a
// Windows host (PEM + PFX) and prints the import steps; `show` lists certificates and expiry.
#include "commands.hpp"
#include "exit_code.hpp"
#include "pki/pki.hpp"

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace wec::tool {
namespace {

const char* const kDefaultDir = "./var/pki";

struct KeyChoice {
    int rsa_bits = 0;
    std::string key; // p384, p256, rsa2048, ...

    pki::KeyType resolve() const {
        if (rsa_bits) return pki::rsa_key_type(rsa_bits);
        if (!key.empty()) return pki::parse_key_type(key);
        return pki::KeyType::EcP384;
    }
};

struct InitOptions {
    std::string dir = kDefaultDir;
    std::string hostname;
    KeyChoice key;
    std::vector<std::string> ips, dns;
    int days = 730, ca_days = 3650, port = 5986;
    bool force = false, json = false;
};

struct ClientOptions {
    std::string dir = kDefaultDir;
    std::string name;
    std::string password;
    KeyChoice key;
    int days = 730;
    bool modern_pfx = false, force = false, json = false;
};

struct ShowOptions {
    std::string dir = kDefaultDir;
    int warn_days = 30;
    bool json = false;
};

std::string key_label(pki::KeyType t) {
    switch (t) {
    case pki::KeyType::EcP384:
        return "ECDSA P-384";
    case pki::KeyType::EcP256:
        return "ECDSA P-256";
    case pki::KeyType::Rsa2048:
        return "RSA 2048";
    case pki::KeyType::Rsa3072:
        return "RSA 3072";
    case pki::KeyType::Rsa4096:
        return "RSA 4096";
    }
    return "?";
}

// Runs one subcommand, turning pki errors into a message and an exit code.
template <class F>
int guarded(const char* cmd, F&& f) {
    try {
        return f();
    } catch (const pki::PkiError& e) {
        std::fprintf(stderr, "wec pki %s: %s\n", cmd, e.what());
        return exit_code_for(e);
    } catch (const wec::Error& e) {
        // Not a pki::PkiError: something failed while making or writing the files.
        std::fprintf(stderr, "wec pki %s: %s\n", cmd, e.what());
        return kRuntime;
    }
}

int run_init(const InitOptions& o) {
    pki::InitOptions opts;
    opts.key = o.key.resolve();
    opts.dns_names = o.dns;
    opts.ip_addresses = o.ips;
    opts.ca_validity.days = o.ca_days;
    opts.server_validity.days = o.days;
    opts.port = o.port;
    opts.force = o.force;
    auto r = pki::init(o.dir, o.hostname, opts);
    std::string serve = "wec serve --listen 0.0.0.0:" + std::to_string(o.port) +
                        " --auth tls --cert " + r.server_cert + " --key " + r.server_key +
                        " --ca " + r.ca_cert + " --hostname " + o.hostname;
    if (o.json) {
        nlohmann::json out = {{"dir", o.dir},
                              {"key_type", pki::to_string(opts.key)},
                              {"ca_cert", r.ca_cert},
                              {"ca_key", r.ca_key},
                              {"server_cert", r.server_cert},
                              {"server_key", r.server_key},
                              {"ca_thumbprint", r.ca_thumbprint},
                              {"gpo", r.gpo_string},
                              {"serve", serve}};
        std::cout << out.dump(2) << "\n";
        return kOk;
    }
    std::printf("Created a PKI in %s (%s):\n", o.dir.c_str(), key_label(opts.key).c_str());
    std::printf("  %-28s CA certificate (valid %d days)\n", r.ca_cert.c_str(), o.ca_days);
    std::printf("  %-28s CA key: keep it secret, it can issue certificates\n", r.ca_key.c_str());
    std::printf("  %-28s server certificate for %s + CA chain (valid %d days)\n",
                r.server_cert.c_str(), o.hostname.c_str(), o.days);
    std::printf("  %-28s server key\n\n", r.server_key.c_str());
    std::printf("IssuerCA thumbprint (SHA-1 of the CA):\n  %s\n\n", r.ca_thumbprint.c_str());
    std::printf("On Windows hosts, GPO Computer Configuration > Administrative Templates > Windows "
                "Components >\nEvent Forwarding > Configure target Subscription Manager:\n  %s\n\n",
                r.gpo_string.c_str());
    std::printf("Serve HTTPS with:\n  %s\n\n", serve.c_str());
    std::printf("Next, for each Windows host:\n  wec pki client <host FQDN> --dir %s\n",
                o.dir.c_str());
    return kOk;
}

// What to run on the Windows host `name`, in order: copy, import the PFX, trust the CA, let WinRM
// read the key, point the host at the collector (its name from DIR's server.pem, when known).
std::vector<std::string> import_steps(const std::string& name, const pki::ClientResult& r) {
    std::string pfx_file = name + ".pfx";
    std::string key_cmd =
        r.rsa_key
            ? "$c = Get-Item Cert:\\LocalMachine\\My\\" + r.thumbprint +
                  "; $k = [Security.Cryptography.X509Certificates.RSACertificateExtensions]::"
                  "GetRSAPrivateKey($c); $f = if ($k.Key) { \"$env:ProgramData\\Microsoft\\Crypto\\"
                  "Keys\\$($k.Key.UniqueName)\" } else { "
                  "\"$env:ProgramData\\Microsoft\\Crypto\\RSA\\"
                  "MachineKeys\\$($k.CspKeyContainerInfo.UniqueKeyContainerName)\" }; icacls $f "
                  "/grant \"NETWORK SERVICE:R\""
            : "$c = Get-Item Cert:\\LocalMachine\\My\\" + r.thumbprint +
                  "; $k = [Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::"
                  "GetECDsaPrivateKey($c); icacls \"$env:ProgramData\\Microsoft\\Crypto\\Keys\\"
                  "$($k.Key.UniqueName)\" /grant \"NETWORK SERVICE:R\"";
    return {
        "Copy " + pfx_file + " and ca.pem to the Windows host " + name +
            " and open an elevated prompt in that folder.",
        "Import the client certificate and key into LocalMachine\\My:\n"
        "    certutil -f -p \"" +
            r.pfx_password + "\" -importpfx My " + pfx_file,
        "Trust the CA (LocalMachine\\Trusted Root Certification Authorities):\n"
        "    certutil -addstore Root ca.pem",
        "Let the WinRM service (NETWORK SERVICE) read the private key: certlm.msc > Personal > "
        "Certificates > " +
            name +
            " > All Tasks > Manage Private Keys... > Add 'NETWORK SERVICE' with Read; or in "
            "PowerShell:\n    " +
            key_cmd,
        "Point the host at the collector (GPO: Computer Configuration > Administrative Templates > "
        "Windows Components > Event Forwarding > Configure target Subscription Manager):\n    " +
            pki::gpo_string(r.collector.empty() ? "<collector FQDN>" : r.collector,
                            r.ca_thumbprint) +
            "\n  then run `gpupdate /force` (the WinRM service must be running: `winrm quickconfig "
            "-q`).",
    };
}

int run_client(const ClientOptions& o) {
    pki::ClientOptions opts;
    opts.key = o.key.resolve();
    opts.validity.days = o.days;
    opts.pfx_password = o.password;
    opts.legacy_pfx = !o.modern_pfx;
    opts.force = o.force;
    auto r = pki::issue_client(o.dir, o.name, opts);
    const auto steps = import_steps(o.name, r);
    if (o.json) {
        nlohmann::json out = {{"name", o.name},
                              {"key_type", pki::to_string(opts.key)},
                              {"cert", r.cert},
                              {"key", r.key},
                              {"pfx", r.pfx},
                              {"pfx_password", r.pfx_password},
                              {"pfx_password_generated", r.password_generated},
                              {"pfx_algorithms", r.pfx_algorithms},
                              {"thumbprint", r.thumbprint},
                              {"ca_thumbprint", r.ca_thumbprint},
                              {"import_steps", steps}};
        std::cout << out.dump(2) << "\n";
        return kOk;
    }
    std::printf("Issued a client certificate for %s (%s, valid %d days):\n", o.name.c_str(),
                key_label(opts.key).c_str(), o.days);
    std::printf("  %-28s certificate (PEM)\n", r.cert.c_str());
    std::printf("  %-28s private key (PEM)\n", r.key.c_str());
    std::printf("  %-28s key + certificate + CA for Windows (%s)\n", r.pfx.c_str(),
                r.pfx_algorithms.c_str());
    std::printf("  thumbprint %s, issuer CA %s\n\n", r.thumbprint.c_str(), r.ca_thumbprint.c_str());
    std::printf("PFX password: %s%s\n\n", r.pfx_password.c_str(),
                r.password_generated ? "  (generated: keep it for the import)" : "");
    std::printf("On %s:\n", o.name.c_str());
    int n = 1;
    for (const auto& step : steps)
        std::printf("%d. %s\n", n++, step.c_str());
    return kOk;
}

int run_show(const ShowOptions& o) {
    auto r = pki::show(o.dir, std::time(nullptr), o.warn_days);
    if (o.json) {
        nlohmann::json certs = nlohmann::json::array();
        for (const auto& c : r.certificates)
            certs.push_back({{"file", c.file},
                             {"subject", c.subject},
                             {"issuer", c.issuer},
                             {"serial", c.serial},
                             {"not_before", c.not_before},
                             {"not_after", c.not_after},
                             {"days_left", c.days_left},
                             {"status", pki::to_string(c.expiry)},
                             {"thumbprint", c.thumbprint},
                             {"ekus", c.ekus},
                             {"dns_names", c.dns_names},
                             {"ip_addresses", c.ip_addresses},
                             {"is_ca", c.is_ca}});
        nlohmann::json out = {
            {"certificates", certs}, {"warnings", r.warnings}, {"errors", r.errors}};
        std::cout << out.dump(2) << "\n";
    } else {
        for (const auto& c : r.certificates) {
            std::printf("%s\n", c.file.c_str());
            std::printf("  subject     %s%s\n", c.subject.c_str(), c.is_ca ? "  (CA)" : "");
            std::printf("  issuer      %s\n", c.issuer.c_str());
            std::printf("  serial      %s\n", c.serial.c_str());
            std::printf("  valid       %s to %s (%s, %lld days left)\n", c.not_before.c_str(),
                        c.not_after.c_str(), std::string(pki::to_string(c.expiry)).c_str(),
                        static_cast<long long>(c.days_left));
            std::printf("  thumbprint  %s\n", c.thumbprint.c_str());
            std::string ekus, sans;
            for (const auto& e : c.ekus)
                ekus += (ekus.empty() ? "" : ", ") + e;
            for (const auto& d : c.dns_names)
                sans += (sans.empty() ? "DNS:" : ", DNS:") + d;
            for (const auto& i : c.ip_addresses)
                sans += (sans.empty() ? "IP:" : ", IP:") + i;
            if (!ekus.empty()) std::printf("  EKU         %s\n", ekus.c_str());
            if (!sans.empty()) std::printf("  SAN         %s\n", sans.c_str());
        }
    }
    if (r.certificates.empty())
        std::fprintf(stderr,
                     "wec pki show: no certificates in %s; create a PKI with `wec pki init "
                     "--dir %s --hostname <FQDN>`\n",
                     o.dir.c_str(), o.dir.c_str());
    for (const auto& w : r.warnings)
        std::fprintf(stderr, "warning: %s\n", w.c_str());
    for (const auto& e : r.errors)
        std::fprintf(stderr, "error: %s\n", e.c_str());
    if (r.certificates.empty()) return kUsage;
    return r.errors.empty() ? kOk : kPartial;
}

void add_key_options(CLI::App* sub, KeyChoice& key) {
    auto* rsa = sub->add_option("--rsa", key.rsa_bits,
                                "RSA keys of BITS (2048, 3072 or 4096) "
                                "instead of ECDSA P-384")
                    ->check(CLI::IsMember({2048, 3072, 4096}))
                    ->option_text("BITS");
    sub->add_option("--key", key.key, "Key type: p384 (default), p256, rsa2048, rsa3072, rsa4096")
        ->check(CLI::IsMember({"p384", "p256", "rsa2048", "rsa3072", "rsa4096"}))
        ->excludes(rsa);
}

} // namespace

void add_pki(CLI::App& app, Action& action) {
    auto* pki = app.add_subcommand(
        "pki", "Make a CA, server and client certificates for WEF over HTTPS (non-domain hosts)");
    pki->require_subcommand(1);
    pki->footer("Typical use:\n"
                "  wec pki init --dir /etc/wec/pki --hostname wec.example.org\n"
                "  wec pki client web01.dmz.example.org --dir /etc/wec/pki\n"
                "  wec pki show --dir /etc/wec/pki");

    auto init = std::make_shared<InitOptions>();
    auto* i = pki->add_subcommand(
        "init", "Create a CA and the collector's server certificate; print the GPO string");
    i->add_option("--dir", init->dir, "Directory for the PKI files (created 0700 if missing)")
        ->capture_default_str();
    i->add_option("--hostname", init->hostname,
                  "The collector's FQDN, as Windows hosts reach it (CN and first SAN)")
        ->required();
    add_key_options(i, init->key);
    i->add_option("--ip", init->ips, "Also valid for this IP address (SAN; repeatable)");
    i->add_option("--dns", init->dns, "Also valid for this DNS name (SAN; repeatable)");
    i->add_option("--days", init->days, "Validity of the server certificate in days")
        ->check(CLI::Range(1, 36500))
        ->capture_default_str();
    i->add_option("--ca-days", init->ca_days, "Validity of the CA in days")
        ->check(CLI::Range(1, 36500))
        ->capture_default_str();
    i->add_option("--port", init->port, "HTTPS port in the printed GPO string")
        ->check(CLI::Range(1, 65535))
        ->capture_default_str();
    i->add_flag("--force", init->force,
                "Replace an existing PKI in DIR (certificates of the old CA stop working)");
    i->add_flag("--json", init->json, "JSON output for scripts");
    i->footer("Writes ca.pem, ca.key (0600), server.pem (certificate + CA chain) and server.key "
              "(0600).\nRefuses to replace an existing PKI unless --force.\n"
              "Examples:\n"
              "  wec pki init --dir /etc/wec/pki --hostname wec.example.org\n"
              "  wec pki init --dir ./var/pki --hostname wec.lab.local --ip 127.0.0.1 --rsa 2048");
    i->callback([&action, init] {
        action = [init] { return guarded("init", [&] { return run_init(*init); }); };
    });

    auto client = std::make_shared<ClientOptions>();
    auto* c = pki->add_subcommand(
        "client", "Issue a client certificate (PEM + PFX) for a Windows host; print import steps");
    c->add_option("name", client->name, "The Windows host's FQDN (certificate CN and SAN)")
        ->required();
    c->add_option("--dir", client->dir, "PKI directory made by `wec pki init`")
        ->capture_default_str();
    c->add_option("--pfx-password", client->password,
                  "Password of the PFX (Windows needs one to import; random when not given)")
        ->envname("WEC_PFX_PASSWORD");
    add_key_options(c, client->key);
    c->add_option("--days", client->days, "Validity in days")
        ->check(CLI::Range(1, 36500))
        ->capture_default_str();
    c->add_flag("--modern-pfx", client->modern_pfx,
                "Encrypt the PFX with AES-256/SHA-256 (Windows 10 1709+ and Server 2019+ only); "
                "the default, 3DES/SHA-1, imports on every Windows 10 and Server 2016");
    c->add_flag("--force", client->force, "Replace existing files for NAME");
    c->add_flag("--json", client->json, "JSON output for scripts (includes the PFX password)");
    c->footer("Writes NAME.pem, NAME.key (0600) and NAME.pfx (0600: key, certificate and CA).\n"
              "Examples:\n"
              "  wec pki client web01.dmz.example.org --dir /etc/wec/pki\n"
              "  wec pki client pc7.workgroup.lan --dir /etc/wec/pki --pfx-password 'S3cret!' "
              "--rsa 2048");
    c->callback([&action, client] {
        action = [client] { return guarded("client", [&] { return run_client(*client); }); };
    });

    auto show = std::make_shared<ShowOptions>();
    auto* s = pki->add_subcommand("show", "List certificates with thumbprints and expiry dates");
    s->add_option("--dir", show->dir, "PKI directory")->capture_default_str();
    s->add_option("--warn-days", show->warn_days, "Warn when a certificate expires within DAYS")
        ->check(CLI::Range(0, 36500))
        ->option_text("DAYS")
        ->capture_default_str();
    s->add_flag("--json", show->json, "JSON output for scripts");
    s->footer("Lists every certificate in the *.pem, *.crt and *.cer files of DIR.\n"
              "Exit status: 0 when all are valid (warnings on stderr for those expiring within "
              "--warn-days),\n1 when one has expired, 2 when DIR holds no certificate.\n"
              "Example:\n"
              "  wec pki show --dir /etc/wec/pki --json | jq -r '.certificates[].thumbprint'");
    s->callback([&action, show] {
        action = [show] { return guarded("show", [&] { return run_show(*show); }); };
    });
}

} // namespace wec::tool
