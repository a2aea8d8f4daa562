# `make package`: the Debian package of this build (CPack DEB), docs/install.md describes it.
# What only the package installs (the unit, /etc files, docs) is the install component "deb",
# excluded from `make install` / `cmake --install` (which must never write /etc or /lib).
set(WEC_DEB_DIR ${PROJECT_SOURCE_DIR}/packaging/deb)

# cpack (and `make install`) install what is built; they do not build the whole tree (tests,
# benchmarks) first. `make package` builds the binary and the man pages, then runs cpack.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(FILES ${WEC_DEB_DIR}/wec.service DESTINATION /lib/systemd/system
  COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES ${WEC_DEB_DIR}/wec.toml DESTINATION /etc/wec COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES ${WEC_DEB_DIR}/wec.logrotate DESTINATION /etc/logrotate.d RENAME wec
  COMPONENT deb EXCLUDE_FROM_ALL)

# Documentation and examples: /usr/share/doc/wec (the man pages point there).
file(GLOB WEC_DOC_PAGES ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${WEC_DOC_PAGES} DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/wec
  COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/samples/haproxy.cfg ${PROJECT_SOURCE_DIR}/samples/grafana/wec.json
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/wec/examples COMPONENT deb EXCLUDE_FROM_ALL)
# The sample subscription, writing where the service may write (/var/log/wec).
file(READ ${PROJECT_SOURCE_DIR}/samples/subscriptions/security.toml WEC_SAMPLE_SUB)
foreach(pair
    "samples/subscriptions/security.toml --db sqlite:./var/wec.db|/usr/share/doc/wec/examples/subscriptions/security.toml --db sqlite:/var/lib/wec/wec.db"
    "Apply with: wec sub|Apply with: runuser -u wec -- wec sub"
    "./var/events/|/var/log/wec/")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  string(FIND "${WEC_SAMPLE_SUB}" "${from}" found)
  if(found EQUAL -1)
    message(FATAL_ERROR "samples/subscriptions/security.toml no longer has '${from}': update cmake/WecPackage.cmake")
  endif()
  string(REPLACE "${from}" "${to}" WEC_SAMPLE_SUB "${WEC_SAMPLE_SUB}")
endforeach()
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/packaging/security.toml CONTENT "${WEC_SAMPLE_SUB}" @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/security.toml
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/wec/examples/subscriptions COMPONENT deb EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wec)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "wec")
set(CPACK_PACKAGE_CONTACT "wec maintainers <wec@localhost>")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "wec maintainers <wec@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Windows Event Forwarding collector and toolkit")
# The long description (CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY on the first line).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "wec receives the event logs that Windows hosts push with no agent installed
(WS-Management over HTTP with Kerberos, or HTTPS with client certificates,
SLDC-compressed) and writes them to files, TCP, syslog, Kafka or Redis as raw
XML, JSON or Elastic Common Schema. It also decodes captured WEF traffic
offline and emulates Windows sources for load tests.
.
This package runs the collector as the systemd service wec.service (user wec,
configuration in /etc/wec/wec.toml, state in /var/lib/wec).")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from the binary (dpkg-shlibdeps), plus what the maintainer scripts use, plus
# the libraries wec opens with dlopen when first used (common/dynlib.hpp), which dpkg-shlibdeps
# cannot see: librdkafka (kafka output; >= 1.6.0 for rd_kafka_produceva), libpq (PostgreSQL store;
# >= 12 for the tcp_user_timeout connection keyword), libsqlite3 (SQLite store; >= 3.20.0 for
# sqlite3_prepare_v3) and libevtx (the reference EVTX reader).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "adduser, libpq5 (>= 12), librdkafka1 (>= 1.6.0), libsqlite3-0 (>= 3.20.0), libevtx1")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "krb5-user, prometheus")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${WEC_DEB_DIR}/conffiles ${WEC_DEB_DIR}/postinst ${WEC_DEB_DIR}/prerm ${WEC_DEB_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)
# One package holding the default component (binary, completions, man pages) and "deb".
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL Unspecified deb)
include(CPack)
