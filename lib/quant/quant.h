// quant.h — every quantizer of lib/quant in one include (target //lib/quant:quant).
//
//   at::Tensor q = mpq::quant::LinQuantize(w, bits);
#pragma once

#include "lib/quant/dorefa.h"
#include "lib/quant/fracbits.h"
#include "lib/quant/hwgq.h"
#include "lib/quant/lin.h"
#include "lib/quant/lsq.h"
#include "lib/quant/pact.h"
#include "lib/quant/symmetric.h"
#include "lib/quant/uhlich.h"
