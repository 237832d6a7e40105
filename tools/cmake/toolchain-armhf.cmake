# Raspberry Pi 2 / 3 / 4 and Zero 2 W running 32-bit Debian (ARMv7, Cortex-A7 or newer).
set(KAIROS_ARCH armhf)
set(KAIROS_TRIPLET arm-linux-gnueabihf)
set(KAIROS_ARCH_FLAGS "-mcpu=cortex-a7 -mfpu=neon-vfpv4 -mfloat-abi=hard")
set(KAIROS_QEMU_CPU cortex-a7)
include(${CMAKE_CURRENT_LIST_DIR}/cross.cmake)
