// Umbrella header for coded convolution (docs/conv.md): direct convolution,
// APCP/KCCP partitioning, FCDCC and the im2col route for any strategy.
#ifndef POLYGUARD_CONV_H_
#define POLYGUARD_CONV_H_

#include "polyguard/conv/apcp_kccp.h"
#include "polyguard/conv/coded_convolution.h"
#include "polyguard/conv/convolution.h"
#include "polyguard/conv/im2col_convolution.h"

#endif  // POLYGUARD_CONV_H_
