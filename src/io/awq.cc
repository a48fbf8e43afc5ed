#include "io/awq.h"

#include <cstring>
#include <set>
#include <vector>

#include "core/thread_pool.h"
#include "io/zip_reader.h"

namespace ixc {

namespace {

constexpr const char* kSuffixes[] = {".qweight", ".qzeros", ".scales"};

class AwqSource : public TensorSource {
 public:
  const std::map<std::string, TensorView>& tensors() const override { return tensors_; }
  const std::string& path() const override { return path_; }

  std::string path_ = "AWQ dequantised weights";
  std::vector<AlignedBuffer> owned_;
  std::map<std::string, TensorView> tensors_;
};

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::char_traits<char>::length(suffix);
  return s.size() > n && s.compare(s.size() - n, n, suffix) == 0;
}

}  // namespace

void UnpackAwqNibbles(uint32_t packed, uint8_t out[8]) {
  static constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (int k = 0; k < 8; ++k) out[kOrder[k]] = static_cast<uint8_t>((packed >> (4 * k)) & 0xf);
}

namespace {

// Validates a triple and returns its geometry.
Status CheckAwqShapes(const std::string& name, const TensorView& qweight, const TensorView& qzeros,
                      const TensorView& scales, int64_t* in_features, int64_t* out_features_out, int64_t* groups_out) {
  auto bad = [&](const std::string& why) { return DataLoss(StrFormat("AWQ layer '%s': %s", name.c_str(), why.c_str())); };
  if (qweight.dtype != DType::kI32 || qzeros.dtype != DType::kI32) return bad("qweight and qzeros must be I32");
  if (scales.dtype != DType::kF16) return bad(StrFormat("scales are %s, expected F16", DTypeName(scales.dtype)));
  if (qweight.shape.size() != 2 || qzeros.shape.size() != 2 || scales.shape.size() != 2) {
    return bad("qweight, qzeros and scales must be 2-D");
  }
  const int64_t in = qweight.dim(0), packed_out = qweight.dim(1), out_features = packed_out * 8;
  const int64_t groups = scales.dim(0);
  if (in <= 0 || packed_out <= 0) return bad("qweight is empty");
  if (scales.dim(1) != out_features) {
    return bad(StrFormat("scales %s do not match qweight %s (expected %lld columns = 8 x %lld)",
                         ShapeToString(scales.shape).c_str(), ShapeToString(qweight.shape).c_str(),
                         static_cast<long long>(out_features), static_cast<long long>(packed_out)));
  }
  if (groups <= 0 || in % groups != 0) {
    return bad(StrFormat("%lld scale rows do not divide the %lld input rows into equal groups",
                         static_cast<long long>(groups), static_cast<long long>(in)));
  }
  if (qzeros.shape != Shape{groups, packed_out}) {
    return bad(StrFormat("qzeros are %s, expected [%lld, %lld]", ShapeToString(qzeros.shape).c_str(),
                         static_cast<long long>(groups), static_cast<long long>(packed_out)));
  }
  *in_features = in;
  *out_features_out = out_features;
  *groups_out = groups;
  return Status::Ok();
}

}  // namespace

Status DequantizeAwqLinear(const std::string& name, const TensorView& qweight, const TensorView& qzeros,
                           const TensorView& scales, uint16_t* out, ThreadPool* pool) {
  int64_t in, out_features, groups;
  IXC_RETURN_IF_ERROR(CheckAwqShapes(name, qweight, qzeros, scales, &in, &out_features, &groups));
  const int64_t packed_out = out_features / 8, group_size = in / groups;
  const auto* q = static_cast<const uint32_t*>(qweight.data);
  const auto* z = static_cast<const uint32_t*>(qzeros.data);
  const auto* s = static_cast<const uint16_t*>(scales.data);
  // Each packed column c yields 8 whole output rows, so chunks over c write disjoint memory.
  auto work = [&](int64_t c0, int64_t c1, int) {
    uint8_t qn[8], zn[8];
    float sc[8];
    for (int64_t c = c0; c < c1; ++c) {
      uint16_t* rows = out + c * 8 * in;
      for (int64_t g = 0; g < groups; ++g) {
        UnpackAwqNibbles(z[g * packed_out + c], zn);
        for (int j = 0; j < 8; ++j) sc[j] = F16ToF32(s[g * out_features + c * 8 + j]);
        for (int64_t i = g * group_size; i < (g + 1) * group_size; ++i) {
          UnpackAwqNibbles(q[i * packed_out + c], qn);
          for (int j = 0; j < 8; ++j) {
            // Exact in float32 (see awq.h); one rounding to f16.
            rows[j * in + i] = F32ToF16(static_cast<float>(static_cast<int>(qn[j]) - static_cast<int>(zn[j])) * sc[j]);
          }
        }
      }
    }
  };
  if (pool) {
    pool->ParallelFor(packed_out, work);
  } else {
    work(0, packed_out, 0);
  }
  return Status::Ok();
}

bool AwqPacksNatively(const TensorView& qweight, const TensorView& scales) {
  if (qweight.shape.size() != 2 || scales.shape.size() != 2 || scales.dim(0) <= 0) return false;
  return qweight.dim(0) == scales.dim(0) * kG128;  // outputs come in 8s (8 per packed word) anyway
}

Status PackAwqLinear(const std::string& name, const TensorView& qweight, const TensorView& qzeros,
                     const TensorView& scales, void* out, ThreadPool* pool) {
  int64_t in, out_features, groups;
  IXC_RETURN_IF_ERROR(CheckAwqShapes(name, qweight, qzeros, scales, &in, &out_features, &groups));
  if (in != groups * kG128) {
    return InvalidArgument(StrFormat("AWQ layer '%s': groups of %lld inputs; the 4-bit layout needs 128", name.c_str(),
                                     static_cast<long long>(in / groups)));
  }
  const int64_t packed_out = out_features / 8;
  const auto* q = static_cast<const uint32_t*>(qweight.data);
  const auto* z = static_cast<const uint32_t*>(qzeros.data);
  const auto* s = static_cast<const uint16_t*>(scales.data);
  auto* blocks = static_cast<BlockQ4G128x8*>(out);
  // Packed column c holds outputs 8c..8c+7: exactly one 8-row group, whose blocks are [c·groups, (c+1)·groups).
  auto work = [&](int64_t c0, int64_t c1, int) {
    uint8_t qn[8], zn[8];
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t g = 0; g < groups; ++g) {
        BlockQ4G128x8& b = blocks[c * groups + g];
        std::memset(b.qs, 0, sizeof(b.qs));
        UnpackAwqNibbles(z[g * packed_out + c], zn);
        for (int j = 0; j < 8; ++j) {
          b.d[j] = s[g * out_features + c * 8 + j];
          b.m[j] = -static_cast<float>(zn[j]) * F16ToF32(b.d[j]);  // exact: a 4-bit integer times an f16
        }
        for (int i = 0; i < kG128; ++i) {
          UnpackAwqNibbles(q[(g * kG128 + i) * packed_out + c], qn);
          for (int j = 0; j < 8; ++j) b.qs[i / 32][j / 2][i % 32] |= static_cast<uint8_t>(qn[j] << (4 * (j % 2)));
        }
      }
    }
  };
  if (pool) {
    pool->ParallelFor(packed_out, work);
  } else {
    work(0, packed_out, 0);
  }
  return Status::Ok();
}

Result<std::unique_ptr<TensorSource>> DequantizeAwq(const std::map<std::string, TensorView>& tensors, ThreadPool* pool,
                                                    bool four_bit) {
  std::set<std::string> layers;
  for (const auto& [name, view] : tensors) {
    for (const char* suffix : kSuffixes) {
      if (EndsWith(name, suffix)) layers.insert(name.substr(0, name.size() - std::char_traits<char>::length(suffix)));
    }
  }
  auto src = std::make_unique<AwqSource>();
  for (const auto& x : layers) {
    const TensorView* parts[3];
    for (int k = 0; k < 3; ++k) {
      auto it = tensors.find(x + kSuffixes[k]);
      if (it == tensors.end()) {
        return DataLoss(StrFormat("AWQ layer '%s' has no %s (qweight, qzeros and scales come together)", x.c_str(),
                                  kSuffixes[k] + 1));
      }
      parts[k] = &it->second;
    }
    if (tensors.count(x + ".weight")) {
      return DataLoss(StrFormat("AWQ layer '%s' has both a dense weight and a quantised one", x.c_str()));
    }
    int64_t in, out, groups;
    IXC_RETURN_IF_ERROR(CheckAwqShapes(x, *parts[0], *parts[1], *parts[2], &in, &out, &groups));
    TensorView v;
    if (four_bit && AwqPacksNatively(*parts[0], *parts[2])) {
      v.dtype = DType::kQ4G128x8;
      IXC_ASSIGN_OR_RETURN(AlignedBuffer buf, AlignedBuffer::Allocate(static_cast<size_t>(StorageBytes(v.dtype, in * out))));
      IXC_RETURN_IF_ERROR(PackAwqLinear(x, *parts[0], *parts[1], *parts[2], buf.data(), pool));
      v.shape = {out, in};
      v.data = buf.data();
      src->tensors_.emplace(x + ".weight", v);
      src->owned_.push_back(std::move(buf));
      continue;
    }
    IXC_ASSIGN_OR_RETURN(AlignedBuffer buf, AlignedBuffer::Allocate(static_cast<size_t>(in * out) * 2));
    IXC_RETURN_IF_ERROR(DequantizeAwqLinear(x, *parts[0], *parts[1], *parts[2], reinterpret_cast<uint16_t*>(buf.data()), pool));
    v.dtype = DType::kF16;
    v.shape = {out, in};
    v.data = buf.data();
    src->tensors_.emplace(x + ".weight", v);
    src->owned_.push_back(std::move(buf));
  }
  return std::unique_ptr<TensorSource>(std::move(src));
}

}  // namespace ixc
