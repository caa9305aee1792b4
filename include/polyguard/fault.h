// Umbrella header for the fault layer.
#ifndef POLYGUARD_FAULT_H_
#define POLYGUARD_FAULT_H_

#include "polyguard/fault/fault_injector.h"
#include "polyguard/fault/soft_error.h"

#endif  // POLYGUARD_FAULT_H_
