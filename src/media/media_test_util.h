// Shared by the ixc_media tests: the fixture folder, its manifest and expected tensors, and the formulas that
// regenerate the fixture inputs (kept identical to tools/fixtures/make_media_fixtures.py).
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "media/image.h"
#include "media/pixels.h"

namespace ixc::media_test {

inline std::string FixtureDir() { return IXC_MEDIA_FIXTURE_DIR; }

// Parsed once; a reference, so `for (auto& e : Manifest()["decode"])` never iterates a dead temporary.
inline const nlohmann::json& Manifest() {
  static const nlohmann::json manifest = [] {
    std::ifstream in(FixtureDir() + "/manifest.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return manifest;
}

// The expected tensors, opened once per test binary.
inline const SafetensorsFile& Expected() {
  static std::unique_ptr<SafetensorsFile> file = [] {
    auto r = SafetensorsFile::Open(FixtureDir() + "/expected.safetensors");
    if (!r.ok()) {
      ADD_FAILURE() << r.status().ToString();
      return std::unique_ptr<SafetensorsFile>();
    }
    return std::move(r).value();
  }();
  return *file;
}

inline const TensorView* ExpectedTensor(const std::string& name) {
  auto it = Expected().tensors().find(name);
  return it == Expected().tensors().end() ? nullptr : &it->second;
}

inline uint32_t SynthHash(uint32_t x, uint32_t y, uint32_t c, uint32_t seed) {
  uint32_t v = x * 0x9E3779B1u + y * 0x85EBCA77u + c * 0xC2B2AE3Du + seed * 0x27D4EB2Fu;
  v ^= v >> 15;
  v *= 0x2C1B3C6Du;
  v ^= v >> 12;
  v *= 0x297A2D39u;
  v ^= v >> 15;
  return v;
}

// Synth() of the fixture script: kind 0 noise, 1 gradients + noise, 2 blocks with edges.
inline Image Synth(int w, int h, int seed, int kind) {
  Image im = MakeImage(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        const int64_t noise = SynthHash(x, y, c, seed) >> 24;
        int64_t v;
        if (kind == 0) {
          v = noise;
        } else if (kind == 1) {
          v = ((int64_t{x} * 255 / std::max(w - 1, 1)) * (c + 1) + y * 2 + (noise & 7)) & 255;
        } else {
          v = ((x / 7 + y / 5) % 2) * 200 + noise % 56;
        }
        im.row(y)[3 * x + c] = static_cast<uint8_t>(v);
      }
    }
  }
  return im;
}

// SynthFloat() of the fixture script: [3, h, w] in [-2, 2), exact in float32.
inline PixelTensor SynthFloat(int h, int w, int seed) {
  PixelTensor t;
  t.height = h;
  t.width = w;
  t.data.resize(static_cast<size_t>(3) * h * w);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const float u = static_cast<float>(SynthHash(x, y, c, seed) >> 8) / 16777216.0f;
        t.plane(c)[static_cast<size_t>(y) * w + x] = u * 4.0f - 2.0f;
      }
    }
  }
  return t;
}

// Checksum() of the fixture script over n words.
template <typename Word>
uint64_t ChecksumWords(const Word* words, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t m = (i * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) | 1ull;
    sum += (static_cast<uint64_t>(words[i]) + 1) * m;
  }
  return sum;
}
inline uint64_t Checksum(const Image& im) { return ChecksumWords(im.rgb.data(), im.rgb.size()); }
inline uint64_t Checksum(const PixelTensor& t) {
  std::vector<uint32_t> words(t.data.size());
  std::memcpy(words.data(), t.data.data(), words.size() * 4);
  return ChecksumWords(words.data(), words.size());
}
inline uint64_t ChecksumOf(const nlohmann::json& v) { return std::stoull(v.get<std::string>()); }

}  // namespace ixc::media_test
