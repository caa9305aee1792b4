// The training loop and data: the decentralised step with retry, guard,
// scrub, repair and rollback; synthetic data.
#ifndef POLYGUARD_TRAIN_H_
#define POLYGUARD_TRAIN_H_

#include "polyguard/data/idx.h"
#include "polyguard/data/synthetic.h"
#include "polyguard/train/checkpoint.h"
#include "polyguard/train/job_data.h"
#include "polyguard/train/job_runner.h"
#include "polyguard/train/job_spec.h"
#include "polyguard/train/local_peers.h"
#include "polyguard/train/peer_stack.h"
#include "polyguard/train/status_server.h"
#include "polyguard/train/trainer.h"

#endif  // POLYGUARD_TRAIN_H_
