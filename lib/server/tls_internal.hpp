// Shared by tls.cpp and http_server.cpp only.
#pragma once

#include "server/tls.hpp"

#include <boost/asio/ssl.hpp>

namespace wec::server {

struct TlsContext {
    boost::asio::ssl::context ssl{boost::asio::ssl::context::tls_server};
    std::vector<std::string> thumbprints;
    std::vector<std::string> warnings; // for the log, e.g. an expired CRL
};

// True when the certificate carries the Client Authentication extended key usage.
bool has_client_auth_eku(X509* cert);

} // namespace wec::server
