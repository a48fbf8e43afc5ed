// AWQ dequantisation against tests/fixtures/io/awq_small*.safetensors (packed by make_bin_fixtures.py awq
// exactly as spec §1.5 says). Tolerance: none. (q - z) * s is exact in float32 and rounded once to f16, the same
// single rounding torch's reference makes, so every bit must match.
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "io/awq.h"
#include "io/safetensors.h"

namespace ixc {
namespace {

std::string Fixture(const std::string& name) { return std::string(IXC_SOURCE_DIR) + "/tests/fixtures/io/" + name; }

TEST(Awq, NibbleOrder) {
  // Nibble k holds the value k + 1; nibble k belongs to column order[k], order = [0,2,4,6,1,3,5,7].
  uint32_t packed = 0;
  for (int k = 0; k < 8; ++k) packed |= static_cast<uint32_t>(k + 1) << (4 * k);
  uint8_t out[8];
  UnpackAwqNibbles(packed, out);
  const uint8_t want[8] = {1, 5, 2, 6, 3, 7, 4, 8};
  EXPECT_EQ(std::memcmp(out, want, 8), 0);
  UnpackAwqNibbles(0xffffffffu, out);
  for (uint8_t v : out) EXPECT_EQ(v, 15);
}

TEST(Awq, MatchesTorchReferenceExactly) {
  auto q = SafetensorsFile::Open(Fixture("awq_small.safetensors"));
  auto want = SafetensorsFile::Open(Fixture("awq_small_expected.safetensors"));
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_TRUE(want.ok()) << want.status().message();
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    auto got = DequantizeAwq((*q)->tensors(), p);
    ASSERT_TRUE(got.ok()) << got.status().message();
    ASSERT_EQ((*got)->tensors().size(), 2u);  // model.norm.weight is not part of a triple
    for (const auto& [name, w] : (*want)->tensors()) {
      const TensorView& g = (*got)->tensors().at(name);
      EXPECT_EQ(g.dtype, DType::kF16);
      EXPECT_EQ(g.shape, w.shape) << name;
      ASSERT_EQ(g.nbytes(), w.nbytes());
      const auto* a = static_cast<const uint16_t*>(g.data);
      const auto* b = static_cast<const uint16_t*>(w.data);
      int64_t mismatches = 0;
      for (int64_t i = 0; i < w.numel(); ++i) mismatches += a[i] != b[i];
      EXPECT_EQ(mismatches, 0) << name;
    }
  }
}

// The 4-bit layout keeps every weight exactly: (q − z)·s in f32, which the F16 dequantisation rounds once.
TEST(Awq, FourBitLayoutHoldsTheExactWeights) {
  auto q = SafetensorsFile::Open(Fixture("awq_small.safetensors"));
  auto want = SafetensorsFile::Open(Fixture("awq_small_expected.safetensors"));
  ASSERT_TRUE(q.ok() && want.ok());
  auto got = DequantizeAwq((*q)->tensors(), nullptr, /*four_bit=*/true);
  ASSERT_TRUE(got.ok()) << got.status().message();
  int native = 0;
  for (const auto& [name, w] : (*want)->tensors()) {
    const TensorView& g = (*got)->tensors().at(name);
    EXPECT_EQ(g.shape, w.shape) << name;
    if (g.dtype != DType::kQ4G128x8) {  // groups other than 128 inputs stay F16
      EXPECT_EQ(g.dtype, DType::kF16) << name;
      continue;
    }
    ++native;
    EXPECT_EQ(g.nbytes(), static_cast<size_t>(w.numel() / 128 * 70)) << "4.375 bits per weight";
    std::vector<float> row(g.dim(1));
    const auto* f16 = static_cast<const uint16_t*>(w.data);
    int64_t mismatches = 0;
    for (int64_t r = 0; r < g.dim(0); ++r) {
      RowToF32(g, r, row.data());
      // Compared as values: a zero difference times a negative scale is −0 upstream, +0 here.
      for (int64_t i = 0; i < g.dim(1); ++i) mismatches += F16ToF32(F32ToF16(row[i])) != F16ToF32(f16[r * g.dim(1) + i]);
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
  EXPECT_GT(native, 0) << "the fixture has a layer of group 128";
}

TEST(Awq, ValidatesTriples) {
  auto q = SafetensorsFile::Open(Fixture("awq_small.safetensors"));
  ASSERT_TRUE(q.ok());
  const std::string x = "model.layers.0.attention.wqkv";
  auto with = [&](const std::function<void(std::map<std::string, TensorView>*)>& edit) {
    auto t = (*q)->tensors();
    edit(&t);
    return DequantizeAwq(t);
  };
  struct Case {
    std::function<void(std::map<std::string, TensorView>*)> edit;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[&](auto* t) { t->erase(x + ".qzeros"); }, "AWQ layer '" + x + "' has no qzeros"},
      {[&](auto* t) { t->erase(x + ".qweight"); }, "has no qweight"},
      {[&](auto* t) { (*t)[x + ".weight"] = t->at("model.norm.weight"); }, "both a dense weight and a quantised one"},
      {[&](auto* t) { (*t)[x + ".scales"].dtype = DType::kBF16; }, "scales are BF16, expected F16"},
      {[&](auto* t) { (*t)[x + ".scales"].shape = {2, 16}; }, "do not match qweight"},
      {[&](auto* t) { (*t)[x + ".scales"].shape = {3, 32}; (*t)[x + ".qzeros"].shape = {3, 4}; },
       "3 scale rows do not divide the 256 input rows"},
      {[&](auto* t) { (*t)[x + ".qzeros"].shape = {4, 2}; }, "qzeros are [4, 2], expected [2, 4]"},
      {[&](auto* t) { (*t)[x + ".qweight"].dtype = DType::kF32; }, "must be I32"},
  };
  for (const auto& c : cases) {
    auto r = with(c.edit);
    ASSERT_FALSE(r.ok()) << c.expect;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace ixc
