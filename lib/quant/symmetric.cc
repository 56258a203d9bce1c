#include "lib/quant/symmetric.h"

#include "lib/quant/identity_backward.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {

at::Tensor SymmetricQuantize(const at::Tensor& w, const at::Tensor& bits) {
  return QuantizeWithIdentityBackward("SymmetricQuantize", w, bits, kSymmetricMinBits, kSymmetricMaxBits,
                                      &KernelTable::symmetric_forward, op_chain::Symmetric);
}

}  // namespace mpq::quant
