// Everything public in polyguard.
#ifndef POLYGUARD_POLYGUARD_H_
#define POLYGUARD_POLYGUARD_H_

#include "polyguard/base/compensated_matrix.h"
#include "polyguard/base/matrix.h"
#include "polyguard/base/memory.h"
#include "polyguard/base/peer_set.h"
#include "polyguard/base/random.h"
#include "polyguard/base/status.h"
#include "polyguard/codes.h"
#include "polyguard/conv.h"
#include "polyguard/fault.h"
#include "polyguard/nn.h"
#include "polyguard/runtime.h"
#include "polyguard/train.h"

#endif  // POLYGUARD_POLYGUARD_H_
