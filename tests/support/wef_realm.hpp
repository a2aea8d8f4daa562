// The Kerberos set-up most WEF tests need: a throwaway realm with the collector's service
// principals (HTTP/ and HOST/ of one host name), a Windows machine account WIN10$, their keytabs,
// and a credential cache holding WIN10$'s ticket-granting ticket.
#pragma once

#include "support/krb5_realm.hpp"

#include <filesystem>
#include <string>
#include <utility>

namespace wec::testing {

struct WefRealm {
    Krb5Realm realm;
    std::filesystem::path service_keytab; // HTTP/<host> and HOST/<host>
    std::filesystem::path client_keytab;  // WIN10$
    std::string ccache;                   // "FILE:…" with WIN10$'s TGT

    // `options`: the realm's (e.g. the only enctypes the KDC issues).
    explicit WefRealm(const std::string& host, Krb5Realm::Options options = {})
        : realm(std::move(options)) {
        realm.add_principal("HTTP/" + host);
        realm.add_principal("HOST/" + host);
        realm.add_principal("WIN10$");
        service_keytab = realm.export_keytab({"HTTP/" + host, "HOST/" + host}, "wec.keytab");
        client_keytab = realm.export_keytab({"WIN10$"}, "win10.keytab");
        ccache = realm.kinit("WIN10$@" + realm.realm(), client_keytab);
    }
};

} // namespace wec::testing
