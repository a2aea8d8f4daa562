// Internal to lib/server (tls.cpp and http_server.cpp): the definition of the opaque
// TlsContext of server/tls.hpp, and what both files need of a client certificate.
#pragma once

#include "server/tls.hpp"

#include <boost/asio/ssl.hpp>

namespace wec::server {

struct TlsContext {
    boost::asio::ssl::context ssl{boost::asio::ssl::context::tls_server};
    std::vector<std::string> thumbprints;
    std::vector<std::string> warnings; // for the log, e.g. an expired CRL
};

} // namespace wec::server

namespace wec::server::detail {

// True when the certificate carries the Client Authentication extended key usage.
bool has_client_auth_eku(X509* cert);

} // namespace wec::server::detail
