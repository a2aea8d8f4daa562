// The translation unit that builds the tests' precompiled header (wec_test_pch() in
// cmake/WecHelpers.cmake); every test executable reuses it. Nothing of its own.
