#include "lib/runtime/malloc_tuning.h"

#include <malloc.h>

namespace mpq::runtime {

bool TuneMallocForRepeatedLargeAllocations() {
  const bool no_mmap = mallopt(M_MMAP_MAX, 0) == 1;
  // mallopt takes an int: INT_MAX (2 GiB) is the largest trim threshold it accepts.
  const bool no_trim = mallopt(M_TRIM_THRESHOLD, 0x7fffffff) == 1;
  return no_mmap && no_trim;
}

}  // namespace mpq::runtime
