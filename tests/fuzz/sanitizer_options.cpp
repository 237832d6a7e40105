// Linked into every fuzz target: a UBSan report stops the run like an ASan
// report does (libFuzzer then keeps the input), unless tests/fuzz/ubsan.supp
// names it as a known one. Set here rather than by the run script, so a
// reproducer run by hand behaves the same.
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:report_error_type=1:suppressions=" KAIROS_FUZZ_UBSAN_SUPP;
}
