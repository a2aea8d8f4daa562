// SharedLibrary: a library opened on first use (dlopen), its functions looked up by name.
#include "common/dynlib.hpp"
#include "support/temp_dir.hpp"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <zlib.h>

namespace {

using wec::LibraryError;
using wec::SharedLibrary;

// The message of the LibraryError that `f` throws (fails the test when it throws none).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const LibraryError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no LibraryError";
    return {};
}

TEST(SharedLibrary, CallsAFunctionOfTheOpenedLibrary) {
    SharedLibrary z("libz.so.1", "zlib1g");
    EXPECT_EQ(z.soname(), "libz.so.1");
    auto* version = z.function<decltype(::zlibVersion)>("zlibVersion");
    ASSERT_NE(version, nullptr);
    EXPECT_STREQ(version(), ZLIB_VERSION);
    // crc32 of "123456789", the usual check value.
    auto* crc = z.function<decltype(::crc32)>("crc32");
    const char text[] = "123456789";
    EXPECT_EQ(crc(0, reinterpret_cast<const Bytef*>(text), 9), 0xCBF43926u);
}

TEST(SharedLibrary, AMissingLibraryNamesTheFileAndThePackage) {
    auto what = error_of([] { SharedLibrary("libwec-no-such-library.so.7", "wec-nothing"); });
    EXPECT_NE(what.find("cannot load libwec-no-such-library.so.7"), std::string::npos) << what;
    EXPECT_NE(what.find("install the package wec-nothing"), std::string::npos) << what;
    // dlerror()'s reason follows.
    EXPECT_NE(what.find("No such file"), std::string::npos) << what;
}

TEST(SharedLibrary, AFileThatIsNoLibraryIsRefused) {
    wec::testing::TempDir tmp;
    const auto path = tmp.file("libbroken.so.1");
    std::ofstream(path) << "not an ELF file\n";
    auto what = error_of([&] { SharedLibrary(path, "broken1"); });
    EXPECT_NE(what.find("cannot load " + path), std::string::npos) << what;
    EXPECT_NE(what.find("broken1"), std::string::npos) << what;
}

TEST(SharedLibrary, AMissingFunctionNamesItAndTheLibrary) {
    SharedLibrary z("libz.so.1", "zlib1g");
    auto what = error_of([&] { z.function<int()>("wec_no_such_function"); });
    EXPECT_NE(what.find("libz.so.1 has no function wec_no_such_function"), std::string::npos)
        << what;
    EXPECT_NE(what.find("zlib1g"), std::string::npos) << what;
}

} // namespace
