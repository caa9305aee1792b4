// Umbrella header for the peer runtime (gloo).
#ifndef POLYGUARD_RUNTIME_H_
#define POLYGUARD_RUNTIME_H_

#include "polyguard/runtime/coded_product.h"
#include "polyguard/runtime/exchange_tags.h"
#include "polyguard/runtime/peer_group.h"

#endif  // POLYGUARD_RUNTIME_H_
