// Umbrella header for the coding core (pure math; no networking).
#ifndef POLYGUARD_CODES_H_
#define POLYGUARD_CODES_H_

#include "polyguard/codes/abft_code.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"
#include "polyguard/codes/evaluation_points.h"
#include "polyguard/codes/linear_code_decoder.h"
#include "polyguard/codes/low_weight_code.h"
#include "polyguard/codes/mds_code.h"
#include "polyguard/codes/polydot_code.h"
#include "polyguard/codes/product_code.h"
#include "polyguard/codes/product_mds_code.h"
#include "polyguard/codes/product_trial.h"
#include "polyguard/codes/replication_code.h"
#include "polyguard/codes/rotation_code.h"
#include "polyguard/codes/strategy.h"
#include "polyguard/codes/strategy_registry.h"
#include "polyguard/codes/uncoded_code.h"

#endif  // POLYGUARD_CODES_H_
