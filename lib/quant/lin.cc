#include "lib/quant/lin.h"

#include "lib/quant/identity_backward.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {

at::Tensor LinQuantize(const at::Tensor& w, const at::Tensor& bits) {
  return QuantizeWithIdentityBackward("LinQuantize", w, bits, 1, kLinMaxBits, &KernelTable::lin_forward,
                                      op_chain::Lin);
}

}  // namespace mpq::quant
