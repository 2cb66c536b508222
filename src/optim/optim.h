// The optimizer layer in one include: parameters and the decay policy, AdamW, gradient
// clipping, and the learning-rate schedule.
#pragma once
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"
#include "optim/param.h"
