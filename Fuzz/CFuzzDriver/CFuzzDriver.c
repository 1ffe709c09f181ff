// Declarations only (include/CFuzzDriver.h); libFuzzer defines the function when a target is
// built with -sanitize=fuzzer.
#include "CFuzzDriver.h"
