// Umbrella header for layers and the optimiser.
#ifndef POLYGUARD_NN_H_
#define POLYGUARD_NN_H_

#include "polyguard/nn/activation.h"
#include "polyguard/nn/coded_conv2d.h"
#include "polyguard/nn/coded_layer.h"
#include "polyguard/nn/coded_linear.h"
#include "polyguard/nn/max_pool.h"
#include "polyguard/nn/sequential.h"
#include "polyguard/nn/softmax_cross_entropy.h"
#include "polyguard/optim/sgd.h"

#endif  // POLYGUARD_NN_H_
