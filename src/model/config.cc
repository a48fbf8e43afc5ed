#include "model/config.h"

#include <cmath>

namespace ixc {

double RopeBaseForLength(const DecoderConfig& c, int64_t length) {
  if (c.rope_scaling_type != "dynamic" || length <= c.max_position_embeddings) return c.rope_theta;
  const double f = c.rope_scaling_factor;
  const double d = static_cast<double>(c.head_dim());
  return c.rope_theta *
         std::pow(f * static_cast<double>(length) / static_cast<double>(c.max_position_embeddings) - (f - 1.0),
                  d / (d - 2.0));
}

}  // namespace ixc
