# Shared part of the ARM toolchain files (armel, armhf, arm64): a sysroot
# made by tools/make-sysroot from Debian's packages, and the architecture's
# qemu-user to run what is built (ctest and gtest discovery go through
# CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
if(KAIROS_ARCH STREQUAL "arm64")
  set(CMAKE_SYSTEM_PROCESSOR aarch64)
  set(KAIROS_QEMU qemu-aarch64-static)
else()
  set(CMAKE_SYSTEM_PROCESSOR arm)
  set(KAIROS_QEMU qemu-arm-static)
endif()
set(CMAKE_C_COMPILER ${KAIROS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${KAIROS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${KAIROS_TRIPLET})

if(NOT KAIROS_SYSROOT)
  set(KAIROS_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../../build-sysroot/${KAIROS_ARCH}")
endif()
get_filename_component(KAIROS_SYSROOT "${KAIROS_SYSROOT}" ABSOLUTE)
if(NOT EXISTS "${KAIROS_SYSROOT}/usr/include/mbedtls")
  message(FATAL_ERROR "no ${KAIROS_ARCH} sysroot at ${KAIROS_SYSROOT}: run tools/make-sysroot ${KAIROS_ARCH}")
endif()
set(CMAKE_SYSROOT "${KAIROS_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${KAIROS_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)   # protoc and the nanopb generator run on the build machine
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_LIBDIR} "${KAIROS_SYSROOT}/usr/lib/${KAIROS_TRIPLET}/pkgconfig:${KAIROS_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${KAIROS_SYSROOT}")

set(CMAKE_C_FLAGS_INIT "${KAIROS_ARCH_FLAGS}")
# -Wno-psabi: GCC's note that std::span passing changed in GCC 7.1 is about
# mixing objects built by GCC 6 and 7+, which never happens here.
set(CMAKE_CXX_FLAGS_INIT "${KAIROS_ARCH_FLAGS} -Wno-psabi")
set(CMAKE_CROSSCOMPILING_EMULATOR ${KAIROS_QEMU} -cpu ${KAIROS_QEMU_CPU} -L ${KAIROS_SYSROOT})
