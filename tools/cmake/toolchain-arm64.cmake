# Raspberry Pi Zero 2 W / 3 / 4 / 5 running a 64-bit OS (Raspberry Pi OS
# 64-bit or Debian arm64). Cortex-A53 is the oldest core among them, so its
# code runs on every one.
set(KAIROS_ARCH arm64)
set(KAIROS_TRIPLET aarch64-linux-gnu)
set(KAIROS_ARCH_FLAGS "-mcpu=cortex-a53")
set(KAIROS_QEMU_CPU cortex-a53)
include(${CMAKE_CURRENT_LIST_DIR}/cross.cmake)
