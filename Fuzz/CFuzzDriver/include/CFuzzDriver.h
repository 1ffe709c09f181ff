// libFuzzer's driver, for fuzz targets whose `main` SwiftPM renames (<module>_main):
// they call it from that function instead of linking libFuzzer's own main.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
