// Which stored type each tensor gets in a model of a given weight type: one rule shared by `ixc convert` (the
// files it writes) and synthetic models (`ixc bench --type`), so a benchmark measures the layout a user's file has.
#pragma once

#include <string>

#include "core/tensor.h"

namespace ixc {

// bf16: f32 matrices as bf16 (16-bit ones stay). f16 / f32: every matrix in that float type (synthetic models). q8_0: every matrix the kernels multiply by (decoder linears,
// LM head, embeddings, adapters, vision linears, projector) as Q8_0. q4_0: the decoder linears as Q4_0, the other
// such matrices as Q8_0 (see DEVELOPERS.md for the measured reasons). Vectors (norms, biases) and matrices whose rows
// are not whole 32-value blocks (the patch embedding) stay in floating point.
enum class WeightType { kBF16, kF16, kF32, kQ8_0, kQ4_0 };

bool ParseWeightType(const std::string& name, WeightType* out);  // "bf16", "f16", "f32", "q8_0", "q4_0"
const char* WeightTypeName(WeightType t);

// The type tensor `name` of shape `shape`, stored now as `source` (a float type, or Q4G128x8 for an AWQ layer held
// exactly), has in a model of type `t`.
DType StoredTypeFor(WeightType t, const std::string& name, const Shape& shape, DType source);

// The decoder's big linears (wqkv, wo, w1, w2, w3 of every layer).
bool IsDecoderLinear(const std::string& name);

}  // namespace ixc
