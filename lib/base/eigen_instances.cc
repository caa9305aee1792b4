// The one copy of Eigen's common kernels (eigen_instances.h).
#include "lib/base/eigen_instances.h"

POLYGUARD_EIGEN_INSTANCES(template)
