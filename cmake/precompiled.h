// Eigen's headers, precompiled once per target when POLYGUARD_PCH is on
// (scripts/test, CI): its dense module alone takes about 2.7 s of a file's
// compile here. With them, the extern declarations of Eigen's common kernels.
// Nothing else: the standard headers cost no measurable time here, so a file
// that uses one without including it still fails in every build, as it
// would in a user's (who builds without this). Masked: Eigen's headers and
// what they include (<vector>, <cmath>, <functional>, ...) in a file that
// does not reach Eigen through its own includes; install_consumer compiles
// the public headers without this.
#ifndef POLYGUARD_CMAKE_PRECOMPILED_H_
#define POLYGUARD_CMAKE_PRECOMPILED_H_

#include <Eigen/Dense>
#include <Eigen/SparseCore>
// Declared here, defined once in the library (lib/base/eigen_instances.cc).
#include "../lib/base/eigen_instances.h"
POLYGUARD_EIGEN_INSTANCES(extern template)

#endif  // POLYGUARD_CMAKE_PRECOMPILED_H_
