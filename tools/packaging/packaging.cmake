# Debian packages (CPack): kairos-node, and kairos-gateway with kairosctl.
# tools/package builds them for amd64, armel, armhf and arm64 (on armhf it
# ships the ARMv6 node of tools/bundle-armv6 instead of this one).
include(GNUInstallDirs)
set(PKG ${CMAKE_SOURCE_DIR}/tools/packaging)

install(TARGETS kairos-node RUNTIME DESTINATION bin COMPONENT node)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/boards/ DESTINATION share/kairos/boards COMPONENT boards FILES_MATCHING PATTERN "*.toml")
install(FILES ${PKG}/node.toml DESTINATION /etc/kairos COMPONENT node)
install(FILES ${PKG}/kairos-node.service DESTINATION /lib/systemd/system COMPONENT node)
# One sysusers file per package (both may be installed on one machine).
install(FILES ${PKG}/kairos.sysusers DESTINATION /usr/lib/sysusers.d RENAME kairos-node.conf COMPONENT node)
# A node's Ball peer ([jobs.ball] handler, docs/BALL.md).
install(PROGRAMS ${CMAKE_SOURCE_DIR}/tools/ball-peer DESTINATION share/kairos COMPONENT node)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/kairos-node COMPONENT node)

install(TARGETS kairos-gateway kairosctl kairos-sim kairos-mcp RUNTIME DESTINATION bin COMPONENT gateway)
install(FILES ${PKG}/gateway.toml ${PKG}/kairosctl.toml DESTINATION /etc/kairos COMPONENT gateway)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/gateway/web/static/ DESTINATION share/kairos/web COMPONENT gateway)
install(FILES ${PKG}/kairos-gateway.service DESTINATION /lib/systemd/system COMPONENT gateway)
install(FILES ${PKG}/kairos-gateway.sysusers DESTINATION /usr/lib/sysusers.d RENAME kairos-gateway.conf COMPONENT gateway)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/PROTOCOL.md ${CMAKE_SOURCE_DIR}/docs/SCHEDULING.md
              ${CMAKE_SOURCE_DIR}/docs/SIM.md ${CMAKE_SOURCE_DIR}/docs/BALL.md
        DESTINATION share/doc/kairos-gateway COMPONENT gateway)

# Maintainer scripts and conffiles per package.
foreach(component node gateway)
  set(dir ${CMAKE_BINARY_DIR}/debian-${component})
  file(MAKE_DIRECTORY ${dir})
  foreach(script postinst prerm)
    file(READ ${PKG}/${script} text)
    string(REPLACE "@UNIT@" "kairos-${component}.service" text "${text}")
    file(WRITE ${dir}/${script} "${text}")
    file(CHMOD ${dir}/${script} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/debian-node/conffiles "/etc/kairos/node.toml\n")
file(WRITE ${CMAKE_BINARY_DIR}/debian-gateway/conffiles "/etc/kairos/gateway.toml\n/etc/kairos/kairosctl.toml\n")

if(CMAKE_CROSSCOMPILING)
  set(KAIROS_DEB_ARCH ${KAIROS_ARCH})
else()
  execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE KAIROS_DEB_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL node gateway boards)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Kairos mesh maintainers <kairos@localhost>")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "Kairos mesh maintainers <kairos@localhost>")
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${KAIROS_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Every DT_NEEDED of the packaged binaries has its package here
# (tests/packaging/check_depends.sh checks it on every architecture).
# kairos-sim runs the node's own code (kairos_node, with its drivers), so the
# gateway package needs ALSA and libgpiod too; kairosctl does not.
set(KAIROS_RUNTIME_DEPENDS "libc6 (>= 2.36), libstdc++6 (>= 12), libgcc-s1, libmbedcrypto7 (>= 2.28), libpaho-mqttpp3-1 (>= 1.2), libpaho-mqtt1.3 (>= 1.3.12), libtomlplusplus3 (>= 3.3), libasound2 (>= 1.2), libgpiod2 (>= 1.6), adduser")
set(CPACK_DEBIAN_NODE_PACKAGE_NAME kairos-node)
set(CPACK_DEBIAN_NODE_DESCRIPTION "Kairos mesh node daemon\n kairos-node samples a board's sensors through the KAIROS phase/coherence\n loop and reports to the mesh gateway over MQTT as signed frames.")
set(CPACK_DEBIAN_NODE_PACKAGE_DEPENDS "${KAIROS_RUNTIME_DEPENDS}, kairos-boards (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_NODE_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian-node/postinst ${CMAKE_BINARY_DIR}/debian-node/prerm ${CMAKE_BINARY_DIR}/debian-node/conffiles)
set(CPACK_DEBIAN_GATEWAY_PACKAGE_NAME kairos-gateway)
set(CPACK_DEBIAN_GATEWAY_DESCRIPTION "Kairos mesh gateway and operator console\n kairos-gateway verifies every frame, keeps the registry of nodes in SQLite\n and computes the mesh state; kairosctl is the operator's console;\n kairos-sim runs thousands of simulated nodes against a gateway.")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_DEPENDS "${KAIROS_RUNTIME_DEPENDS}, libsqlite3-0 (>= 3.40), libcivetweb1 (>= 1.15), libprometheus-cpp-core1.0 (>= 1.0)")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_RECOMMENDS "mosquitto, kairos-boards (= ${PROJECT_VERSION})")
# Board files are data shared by the node and by kairosctl provision.
set(CPACK_DEBIAN_BOARDS_PACKAGE_NAME kairos-boards)
set(CPACK_DEBIAN_BOARDS_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_BOARDS_FILE_NAME kairos-boards_${PROJECT_VERSION}_all.deb)
set(CPACK_DEBIAN_BOARDS_DESCRIPTION "Kairos mesh board files\n One data file per supported board: pins, timescales, device class.")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian-gateway/postinst ${CMAKE_BINARY_DIR}/debian-gateway/prerm ${CMAKE_BINARY_DIR}/debian-gateway/conffiles)
include(CPack)
