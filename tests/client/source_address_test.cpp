// ConnectionOptions::source_address: the connection comes from the given local address (what
// bench/serve/conn_bench uses to open 100,000 connections from several 127.0.0.x), seen by a real
// listening socket on 127.0.0.1; a source address that is not one is a usage error.
#include "client/client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace client = wec::client;

TEST(SourceAddress, TheConnectionComesFromTheGivenAddress) {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::string seen;
    std::thread server([&] {
        for (int i = 0; i < 2; ++i) { // two connections: two different addresses
            tcp::socket s(ioc);
            acceptor.accept(s);
            seen += s.remote_endpoint().address().to_string() + " ";
            boost::system::error_code ec; // a failed client's stand-in may be gone already
            asio::streambuf request;
            asio::read_until(s, request, "\r\n\r\n", ec);
            asio::write(s,
                        asio::buffer(std::string(
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")),
                        ec);
        }
    });
    int done = 0;
    try {
        for (const char* address : {"127.0.0.7", "127.0.0.8"}) {
            client::ConnectionOptions o;
            o.host = "127.0.0.1";
            o.port = acceptor.local_endpoint().port();
            o.source_address = address;
            o.timeout = std::chrono::seconds(10);
            client::Connection c(o);
            auto r = c.exchange_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            EXPECT_EQ(r.status, 200u);
            ++done;
        }
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
    }
    for (; done < 2; ++done) { // a failed client: let the server thread finish
        tcp::socket s(ioc);
        s.connect(acceptor.local_endpoint());
        asio::write(s, asio::buffer(std::string("\r\n\r\n")));
    }
    server.join();
    EXPECT_EQ(seen, "127.0.0.7 127.0.0.8 ");
}

TEST(SourceAddress, NotAnAddressIsAUsageError) {
    client::ConnectionOptions o;
    o.host = "127.0.0.1";
    o.port = 9; // never reached
    o.source_address = "srv.windomain.local";
    client::Connection c(o);
    try {
        c.exchange_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        FAIL() << "no error";
    } catch (const client::ClientError& e) {
        EXPECT_EQ(e.kind(), client::ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("bad source address 'srv.windomain.local'"),
                  std::string::npos)
            << e.what();
    }
}

} // namespace
