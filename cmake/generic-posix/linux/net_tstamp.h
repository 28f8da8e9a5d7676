/* VIGIL_GENERIC_POSIX shadows this Linux-only header (CMakeLists.txt, "platform
 * features"): code that includes it must be guarded by its HAVE_* feature. */
#error "<linux/net_tstamp.h> is Linux-only: guard it with its HAVE_* feature"
