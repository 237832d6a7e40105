# Raspberry Pi Zero / Zero W / Pi 1 (ARMv6, ARM1176JZF-S). Debian's armhf is
# ARMv7 only, so these boards use the armel port with ARMv6 code and VFP.
set(KAIROS_ARCH armel)
set(KAIROS_TRIPLET arm-linux-gnueabi)
set(KAIROS_ARCH_FLAGS "-march=armv6kz -mfpu=vfp -mfloat-abi=softfp")
set(KAIROS_QEMU_CPU arm1176)
include(${CMAKE_CURRENT_LIST_DIR}/cross.cmake)
