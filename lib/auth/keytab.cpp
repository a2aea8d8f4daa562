// Keytab listing with the krb5 API (for the startup summary and service-name checks).
#include "auth/gss.hpp"

#include <algorithm>
#include <krb5/krb5.h>

namespace wec::auth {
namespace {

struct Krb5Context {
    krb5_context ctx = nullptr;
    Krb5Context() {
        krb5_error_code code = krb5_init_context(&ctx);
        if (code != 0)
            throw GssError("krb5_init_context", "error " + std::to_string(code) +
                                                    " (is the krb5 configuration readable?)");
    }
    ~Krb5Context() { krb5_free_context(ctx); }
    Krb5Context(const Krb5Context&) = delete;
    Krb5Context& operator=(const Krb5Context&) = delete;

    std::string message(krb5_error_code code) const {
        const char* m = krb5_get_error_message(ctx, code);
        std::string s = m != nullptr ? m : "error " + std::to_string(code);
        krb5_free_error_message(ctx, m);
        return s;
    }
};

struct Keytab {
    const Krb5Context& k;
    krb5_keytab kt = nullptr;
    Keytab(const Krb5Context& context, const std::string& name) : k(context) {
        krb5_error_code code = krb5_kt_resolve(k.ctx, name.c_str(), &kt);
        if (code != 0) throw GssError("krb5_kt_resolve(" + name + ")", k.message(code));
    }
    ~Keytab() { krb5_kt_close(k.ctx, kt); }
    Keytab(const Keytab&) = delete;
    Keytab& operator=(const Keytab&) = delete;
};

} // namespace

std::vector<KeytabEntry> keytab_entries(const std::string& path) {
    std::string name = path.find(':') == std::string::npos ? "FILE:" + path : path;
    Krb5Context k;
    Keytab kt(k, name);
    krb5_kt_cursor cursor;
    krb5_error_code code = krb5_kt_start_seq_get(k.ctx, kt.kt, &cursor);
    if (code != 0) throw GssError("reading keytab " + path, k.message(code));
    std::vector<KeytabEntry> entries;
    krb5_keytab_entry entry;
    while ((code = krb5_kt_next_entry(k.ctx, kt.kt, &entry, &cursor)) == 0) {
        KeytabEntry e;
        char* principal = nullptr;
        krb5_error_code ucode = krb5_unparse_name(k.ctx, entry.principal, &principal);
        if (ucode == 0) {
            e.principal = principal;
            krb5_free_unparsed_name(k.ctx, principal);
        }
        e.kvno = entry.vno;
        char enctype[128] = {};
        if (krb5_enctype_to_name(entry.key.enctype, FALSE, enctype, sizeof enctype) == 0)
            e.enctype = enctype;
        else
            e.enctype = "enctype " + std::to_string(entry.key.enctype);
        krb5_free_keytab_entry_contents(k.ctx, &entry);
        if (ucode != 0) {
            krb5_kt_end_seq_get(k.ctx, kt.kt, &cursor);
            throw GssError("reading keytab " + path, k.message(ucode));
        }
        entries.push_back(std::move(e));
    }
    krb5_kt_end_seq_get(k.ctx, kt.kt, &cursor);
    if (code != KRB5_KT_END) throw GssError("reading keytab " + path, k.message(code));
    return entries;
}

std::vector<std::string> keytab_principals(const std::string& path) {
    std::vector<std::string> out;
    for (auto& e : keytab_entries(path))
        if (std::find(out.begin(), out.end(), e.principal) == out.end())
            out.push_back(std::move(e.principal));
    return out;
}

} // namespace wec::auth
