// AWQ 4-bit weights (`lmdeploy lite auto_awq`, "gemm" packing; spec §1.5) turned back into dense 16-bit weights.
//
// For a linear layer X with `in` inputs and `out` outputs, group size G (128 in the real checkpoint):
//   X.qweight  I32 [in, out/8]   within each word, nibble k (bits 4k..4k+3) is output column 8c + order[k],
//                                order = [0,2,4,6,1,3,5,7]
//   X.qzeros   I32 [in/G, out/8] zero points, packed the same way
//   X.scales   F16 [in/G, out]
// and the weight is W[o, i] = (q[i, o] - z[i/G, o]) * s[i/G, o].
//
// Output dtype: F16, the dtype of the scales and the one LMDeploy dequantises to. The product of a 4-bit
// difference (|q - z| <= 15) and an f16 scale needs at most 15 significant bits, so it is exact in float32 and
// rounded once to f16 (round to nearest even): results equal torch's `((q - z) * s.float()).half()` bit for bit.
// (|s| > 4367 can overflow to inf, exactly as in f16 arithmetic upstream.)
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/tensor.h"
#include "io/checkpoint.h"

namespace ixc {

class ThreadPool;

// Scalar reference: out[j] = the 4-bit value for output column 8c + j of the word at packed column c.
void UnpackAwqNibbles(uint32_t packed, uint8_t out[8]);

// Dequantises one triple into `out` (F16 bits, PyTorch [out, in] layout, out*in elements). Validates dtypes
// and shapes (group size = in / rows of scales, which must divide `in`). `name` is X, for error messages.
Status DequantizeAwqLinear(const std::string& name, const TensorView& qweight, const TensorView& qzeros,
                           const TensorView& scales, uint16_t* out, ThreadPool* pool = nullptr);

// Repacks one triple of group size 128 (out a multiple of 8) into Q4G128x8 blocks (core/dtype.h) at `out`
// (StorageBytes(kQ4G128x8, out·in) bytes): d = the f16 scale, m = −z·d in f32, the codes as stored. Every weight is
// then exactly (q − z)·s, which the F16 dequantisation rounds once more.
Status PackAwqLinear(const std::string& name, const TensorView& qweight, const TensorView& qzeros,
                     const TensorView& scales, void* out, ThreadPool* pool = nullptr);
// Whether a triple's geometry has a native 4-bit layout (groups of 128 inputs, whole 8-row groups of outputs).
bool AwqPacksNatively(const TensorView& qweight, const TensorView& scales);

// Finds every X.qweight / X.qzeros / X.scales triple in `tensors` and returns a source of `X.weight` tensors
// [out, in] that owns their memory: Q4G128x8 when `four_bit` and the layer packs natively, else dense F16. A partial
// triple, or an X.weight that already exists beside the quantised one, is an error naming X. Tensors that are not
// part of a triple are ignored (use them as stored).
Result<std::unique_ptr<TensorSource>> DequantizeAwq(const std::map<std::string, TensorView>& tensors,
                                                    ThreadPool* pool = nullptr, bool four_bit = false);

}  // namespace ixc
