// CPU backend of the rasterizer. The pipeline reads as named stages:
//   forward:  preprocess -> bin (entries keyed tile|depth) -> sort -> tile ranges -> blend
//   backward: blend backward (per tile entry) -> reduce per Gaussian -> preprocess backward
// All per-Gaussian and per-pixel math comes from the shared headers in ../math. Parallelism is
// ATen's thread pool; tiles are handed out dynamically (their costs differ a lot), and every
// result is independent of which thread did what, so any thread count gives the same bits.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <initializer_list>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "../math/blend.h"
#include "../math/gaussian.h"
#include "../rasterize_api.h"
#include "../tensor_views.h"
#include "adam.h"
#include "simd.h"

namespace dgr {
namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

// Stage timer: with DGR_PROFILE=1 in the environment, each stage's wall time goes to stderr.
class StageTimer {
 public:
  explicit StageTimer(const char* pass) : pass_(pass), enabled_(std::getenv("DGR_PROFILE") != nullptr) {
    last_ = std::chrono::steady_clock::now();
  }
  void lap(const char* stage) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "[dgr %s] %-18s %8.2f ms\n", pass_, stage,
                 std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }

 private:
  const char* pass_;
  bool enabled_;
  std::chrono::steady_clock::time_point last_;
};

// Frees the storage of tensors of the forward state that the rest of a backward pass does not
// read: every handle to them (the Python layer's too) becomes an empty tensor.
void release(std::initializer_list<at::Tensor> tensors) {
  for (const at::Tensor& t : tensors) t.set_();
}

// Calls f(i) for i in [0, n), one task at a time from a shared counter on every pool thread.
template <class F>
void parallel_dynamic(int64_t n, const F& f) {
  if (n <= 0) return;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), n);
  at::parallel_for(0, workers, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; w++)
      for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) f(i);
  });
}

// Splat records of a tile's list, gathered a batch at a time. Lists name Gaussians in depth order,
// so the records are scattered over memory; one tight gather loop keeps many of those loads in
// flight at once, where reading each record as the blend loop reaches it waits on every one
// (the blend loops ran about 25 % faster this way).
class SplatBatch {
 public:
  static constexpr int64_t SIZE = 64;
  SplatBatch(const Splat* splats, const int32_t* point_list, int64_t start, int64_t end)
      : splats_(splats), list_(point_list), start_(start), end_(end) {}
  // The record of list entry k; walking forward or backward, whole batches are gathered.
  const Splat& forward(int64_t k) {
    if (k < lo_ || k >= hi_) fill(k, std::min(end_, k + SIZE));
    return buf_[k - lo_];
  }
  const Splat& backward(int64_t k) {
    if (k < lo_ || k >= hi_) fill(std::max(start_, k - SIZE + 1), k + 1);
    return buf_[k - lo_];
  }

 private:
  void fill(int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; j++) buf_[j - lo] = splats_[list_[j]];
    lo_ = lo, hi_ = hi;
  }
  const Splat* splats_;
  const int32_t* list_;
  int64_t start_, end_, lo_ = 0, hi_ = 0;
  Splat buf_[SIZE];
};

// The per-Gaussian loops read rows of SH coefficients (up to 180 bytes each); the backward one
// also writes their gradients and gathers scattered entry records. Fetching those a few
// Gaussians ahead keeps the loops from waiting on memory (preprocess backward 8.3 -> 6.1 ms,
// forward 6.2 -> 5.95 ms at 93k Gaussians).
constexpr int64_t ROW_PREFETCH_AHEAD = 8;

// ---------------------------------------------------------------------------------------------
// Stage 1: preprocess. One task per Gaussian: cull, project, conic, colour, screen radius, tile
// rectangle, and the number of its tiles where the splat can reach the alpha threshold.

struct PreprocessBuffers {
  Splat* splats;           // [P]
  uint8_t* clamped;        // [P, 3]
  int32_t* radii;          // [P]
  float* depths;           // [P]
  TileRect* rects;         // [P]
  int32_t* tiles_touched;  // [P]
  uint64_t* tile_masks;    // [P] touched_tile_mask() for rectangles of <= MASKED_RECT_TILES
};

// Rectangles of up to 64 tiles keep the result of the exact tile test as a bit mask (bit
// (ty - y0) * width + (tx - x0)), so that binning does not evaluate it a second time.
constexpr int MASKED_RECT_TILES = 64;
inline int rect_tiles(const TileRect& r) { return (r.x1 - r.x0) * (r.y1 - r.y0); }

// Calls f(tx, ty) for each tile of the rectangle where the splat may be visible, row by row.
template <class F>
void for_each_touched_tile(const Splat& s, const TileRect& r, int width, int height, const F& f) {
  const TileTestSplat t(s);
  for (int ty = r.y0; ty < r.y1; ty++)
    for (int tx = r.x0; tx < r.x1; tx++)
      if (splat_touches_tile(t, tx, ty, width, height)) f(tx, ty);
}

// The exact tile test for LANES tiles of the rectangle at a time (lane i: the tile at bit
// first + i), without a branch per tile (preprocess 8.0 -> 7.1 ms at 100k Gaussians, two
// threads, against one scalar test per tile). Each lane's tile and pixel box are computed in
// vector registers too: filling the lanes one scalar at a time went through the stack, and
// reading the vectors back stalled on every test.
uint64_t touched_tile_mask(const Splat& s, const TileRect& r, int width, int height) {
  using namespace cpu;
  if (!(s.power_cut >= 0.0f)) return 0;
  const TileTestSplat t(s);
  const int n = rect_tiles(r);
  const int w = r.x1 - r.x0;
  // bit / w by a float product: (bit + 1/2) / w lies at least 1/(2w) >= 1/128 away from an
  // integer, far more than the product's rounding (bit < 64), so truncation gives the quotient.
  const float inv_w = 1.0f / (float)w;
  uint64_t mask = 0;
  for (int first = 0; first < n; first += LANES) {
    const vint bit = lane_index() + first;  // lanes past the rectangle test tiles below it
    const vint row = __builtin_convertvector((__builtin_convertvector(bit, vfloat) + 0.5f) * inv_w, vint);
    const vint tx = r.x0 + bit - row * w, ty = r.y0 + row;
    const vfloat px0 = __builtin_convertvector(tx * BLOCK_X, vfloat);
    const vfloat px1 = __builtin_convertvector(min_int(splat_int(width), (tx + 1) * BLOCK_X) - 1, vfloat);
    const vfloat py0 = __builtin_convertvector(ty * BLOCK_Y, vfloat);
    const vfloat py1 = __builtin_convertvector(min_int(splat_int(height), (ty + 1) * BLOCK_Y) - 1, vfloat);
    const uint32_t in_rect = n - first >= LANES ? (1u << LANES) - 1 : (1u << (n - first)) - 1;
    mask |= (uint64_t)(lane_bits(~splat_misses_boxes(t, px0, px1, py0, py1)) & in_rect) << first;
  }
  return mask;
}

void store_preprocessed(int64_t i, const Preprocessed& pre, const RasterCamera& cam,
                        const PreprocessBuffers& out) {
  out.radii[i] = pre.radius;
  out.tiles_touched[i] = 0;
  for (int ch = 0; ch < 3; ch++) out.clamped[3 * i + ch] = 0;
  if (!pre.visible) return;
  out.splats[i] = pre.splat;
  out.depths[i] = pre.depth;
  out.rects[i] = pre.rect;
  for (int ch = 0; ch < 3; ch++) out.clamped[3 * i + ch] = pre.clamped[ch];
  if (rect_tiles(pre.rect) <= MASKED_RECT_TILES) {
    out.tile_masks[i] = touched_tile_mask(pre.splat, pre.rect, cam.width, cam.height);
    out.tiles_touched[i] = __builtin_popcountll(out.tile_masks[i]);
  } else {
    out.tiles_touched[i] = count_touched_tiles(pre.splat, pre.rect, cam.width, cam.height);
  }
}

// Row i of an array of rows of `stride` floats (a Gaussian's SH coefficients, their gradient or
// Adam moments), fetched ahead of use; `write`: it will be written too.
inline void prefetch_row(const float* rows, int64_t stride, int64_t i, bool write = false) {
  const char* row = reinterpret_cast<const char*>(rows + stride * i);
  for (int64_t b = 0; b < stride * (int64_t)sizeof(float); b += 64) {
    if (write) __builtin_prefetch(row + b, 1);
    else __builtin_prefetch(row + b);
  }
}

// Mean, scale, rotation and 3D covariance of Gaussians first .. first + LANES - 1, one per lane.
struct LaneGeometry {
  Vec3T<cpu::vfloat> mean, scale;
  Vec4T<cpu::vfloat> rot;
  cpu::vfloat cov3d[6];
};

LaneGeometry gather_geometry(const GaussianArrays& g, int64_t first, float scale_modifier) {
  using cpu::gather_field;
  LaneGeometry lane;
  lane.mean = {gather_field(g.means3D, first, 3, 0), gather_field(g.means3D, first, 3, 1),
               gather_field(g.means3D, first, 3, 2)};
  lane.scale = {gather_field(g.scales, first, 3, 0), gather_field(g.scales, first, 3, 1),
                gather_field(g.scales, first, 3, 2)};
  lane.rot = {gather_field(g.rotations, first, 4, 0), gather_field(g.rotations, first, 4, 1),
              gather_field(g.rotations, first, 4, 2), gather_field(g.rotations, first, 4, 3)};
  compute_cov3d(lane.scale, scale_modifier, lane.rot, lane.cov3d);
  return lane;
}

// Gaussians first .. first + LANES - 1, given by scale and rotation: their projections computed
// one per vector lane (the functions preprocess_gaussian runs, which may round differently in
// the last bit: the compiler fuses multiply-adds as it sees fit), then each visible
// one finished alone (tiles, colour, record).
void preprocess_lanes(const GaussianArrays& g, int64_t first, int64_t end, const RasterCamera& cam,
                      int sh_degree, const PreprocessBuffers& out) {
  using F = cpu::vfloat;
  const LaneGeometry in = gather_geometry(g, first, cam.scale_modifier);
  const Vec3T<F> t = transform_point4x3(cam.view, in.mean);
  const Projection<F> p = project_gaussian(in.mean, t, in.cov3d, cam);
  for (int l = 0; l < cpu::LANES; l++) {
    const int64_t i = first + l;
    if (g.sh && i + ROW_PREFETCH_AHEAD < end) prefetch_row(g.sh, g.sh_stride, i + ROW_PREFETCH_AHEAD);
    Preprocessed pre;
    // Written so that a NaN depth also culls (as preprocess_gaussian).
    if (!(t.z[l] > NEAR_PLANE)) {
      pre.visible = false;
      pre.radius = 0;
    } else {
      Projection<float> one;
      one.x = p.x[l], one.y = p.y[l], one.radius = p.radius[l];
      one.k.A = p.k.A[l], one.k.B = p.k.B[l], one.k.C = p.k.C[l], one.k.aa_scale = p.k.aa_scale[l];
      pre = finish_preprocess(g.at(i), cam, sh_degree, t.z[l], one);
    }
    store_preprocessed(i, pre, cam, out);
  }
}

void preprocess(const GaussianArrays& g, int64_t P, const RasterCamera& cam, int sh_degree,
                const PreprocessBuffers& out) {
  // The vector path covers the Gaussians given by scale and rotation (training's case), in blocks
  // of LANES counted from Gaussian 0, so that which Gaussians go through it (and so every bit)
  // does not depend on the thread count; a precomputed covariance and the last P % LANES
  // Gaussians go one at a time. Both paths run the same functions, but the compiler may fuse a
  // multiply-add in one and not in the other, so they can differ in the last bit.
  const int64_t blocks = g.scales && g.rotations && !g.cov3D ? P / cpu::LANES : 0;
  at::parallel_for(0, blocks, 1024 / cpu::LANES, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b++)
      preprocess_lanes(g, b * cpu::LANES, end * cpu::LANES, cam, sh_degree, out);
  });
  at::parallel_for(blocks * cpu::LANES, P, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      if (g.sh && i + ROW_PREFETCH_AHEAD < end) prefetch_row(g.sh, g.sh_stride, i + ROW_PREFETCH_AHEAD);
      store_preprocessed(i, preprocess_gaussian(g.at(i), cam, sh_degree), cam, out);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Stages 2-4: bin, sort, tile ranges. The original emits a (tile << 32 | depth bits) key for every
// (Gaussian, tile) pair and radix-sorts all of them. Sorting the Gaussians once by depth and then
// distributing them to their tiles in that order (a stable counting sort by tile) yields exactly
// the same order (by tile, then depth, then index) for much less work.

// Stable LSD radix sort of the ids of binned Gaussians by the bits of their (positive) depths.
// The four digits' histograms come from one pass over the keys, and a digit that every key shares
// (the high bits of depths in a narrow range) needs no pass at all.
std::vector<int32_t> sort_by_depth(const float* depths, const int32_t* tiles_touched, int64_t P) {
  constexpr int DIGITS = 4, RADIX = 256;
  std::vector<int32_t> ids(P), tmp_ids;
  std::vector<uint32_t> keys(P), tmp_keys;
  std::vector<size_t> count(DIGITS * (RADIX + 1), 0);  // [digit][bucket + 1]
  size_t n = 0;
  for (int64_t i = 0; i < P; i++) {
    if (tiles_touched[i] == 0) continue;
    uint32_t bits;
    std::memcpy(&bits, &depths[i], sizeof(bits));  // positive floats order like their bits
    ids[n] = (int32_t)i;
    keys[n++] = bits;
    for (int d = 0; d < DIGITS; d++) count[d * (RADIX + 1) + ((bits >> (8 * d)) & 0xFF) + 1]++;
  }
  ids.resize(n);
  keys.resize(n);
  tmp_ids.resize(n);
  tmp_keys.resize(n);
  for (int d = 0; d < DIGITS; d++) {
    size_t* c = count.data() + d * (RADIX + 1);
    if (std::find(c + 1, c + RADIX + 1, n) != c + RADIX + 1) continue;  // one bucket holds all
    for (int b = 0; b < RADIX; b++) c[b + 1] += c[b];
    const int shift = 8 * d;
    for (size_t i = 0; i < n; i++) {
      const size_t dst = c[(keys[i] >> shift) & 0xFF]++;
      tmp_ids[dst] = ids[i];
      tmp_keys[dst] = keys[i];
    }
    ids.swap(tmp_ids);
    keys.swap(tmp_keys);
  }
  return ids;
}

// Calls f(i, e) for every tile entry e of the Gaussians order[lo .. hi), in that (depth) order.
// The entries of consecutive Gaussians lie far apart, so each step would wait for two dependent
// loads (offsets[i], then its entries); fetching them some Gaussians ahead overlaps those waits
// (with the one-pass sort histograms, bin + sort + ranges 6.0 -> 3.5 ms at 100k Gaussians).
constexpr int64_t DEPTH_ORDER_PREFETCH_AHEAD = 16;
template <class F>
void for_each_in_depth_order(const std::vector<int32_t>& order, const int64_t* offsets,
                             const int32_t* entry_tile, int64_t lo, int64_t hi, const F& f) {
  constexpr int64_t AHEAD = DEPTH_ORDER_PREFETCH_AHEAD;
  for (int64_t j = lo; j < hi; j++) {
    if (j + AHEAD < hi) __builtin_prefetch(&offsets[order[j + AHEAD]]);
    if (j + AHEAD / 2 < hi) __builtin_prefetch(&entry_tile[offsets[order[j + AHEAD / 2]]]);
    const int32_t i = order[j];
    for (int64_t e = offsets[i]; e < offsets[i + 1]; e++) f(i, e);
  }
}

struct Binning {
  at::Tensor entry_offsets;  // [P + 1] int64
  at::Tensor entry_slots;    // [N] int32
  at::Tensor point_list;     // [N] int32
  at::Tensor tile_ranges;    // [tiles + 1] int64
};

Binning bin_and_sort(const PreprocessBuffers& pre, int64_t P, const RasterCamera& cam) {
  const int64_t num_tiles = (int64_t)cam.grid_x * cam.grid_y;
  Binning b;

  // bin: every Gaussian lists the tiles it may be visible in.
  b.entry_offsets = at::empty({P + 1}, at::kLong);
  int64_t* offsets = b.entry_offsets.data_ptr<int64_t>();
  offsets[0] = 0;
  for (int64_t i = 0; i < P; i++) offsets[i + 1] = offsets[i] + pre.tiles_touched[i];
  const int64_t N = offsets[P];
  TORCH_CHECK(N < INT32_MAX, "rasterizer: too many tile entries (", N, ")");
  std::vector<int32_t> entry_tile(N);
  at::parallel_for(0, P, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      if (pre.tiles_touched[i] == 0) continue;
      const TileRect& r = pre.rects[i];
      int32_t* out = entry_tile.data() + offsets[i];
      if (rect_tiles(r) <= MASKED_RECT_TILES) {
        const int w = r.x1 - r.x0;
        for (uint64_t bits = pre.tile_masks[i]; bits != 0; bits &= bits - 1) {
          const int bit = __builtin_ctzll(bits);
          *out++ = (r.y0 + bit / w) * cam.grid_x + r.x0 + bit % w;
        }
        continue;
      }
      for_each_touched_tile(pre.splats[i], r, cam.width, cam.height,
                            [&](int tx, int ty) { *out++ = ty * cam.grid_x + tx; });
    }
  });

  // sort: Gaussians front to back.
  const std::vector<int32_t> order = sort_by_depth(pre.depths, pre.tiles_touched, P);

  // tile ranges: count the entries per tile for each chunk of the depth order, then scan
  // (tile-major, chunk-minor) so that each chunk knows where its entries of each tile start.
  const int64_t n = (int64_t)order.size();
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n));
  const int64_t chunk_len = (n + chunks - 1) / chunks;
  std::vector<int64_t> cursor(chunks * num_tiles, 0);  // [chunk][tile]
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; c++) {
      int64_t* counts = cursor.data() + c * num_tiles;
      for_each_in_depth_order(order, offsets, entry_tile.data(), c * chunk_len,
                              std::min(n, (c + 1) * chunk_len),
                              [&](int32_t, int64_t e) { counts[entry_tile[e]]++; });
    }
  });
  b.tile_ranges = at::empty({num_tiles + 1}, at::kLong);
  int64_t* ranges = b.tile_ranges.data_ptr<int64_t>();
  int64_t total = 0;
  for (int64_t t = 0; t < num_tiles; t++) {
    ranges[t] = total;
    for (int64_t c = 0; c < chunks; c++) {
      const int64_t count = cursor[c * num_tiles + t];
      cursor[c * num_tiles + t] = total;
      total += count;
    }
  }
  ranges[num_tiles] = total;

  // Distribute: each chunk writes its Gaussians, in depth order, into their tiles' slots, and
  // each Gaussian remembers where its entries went (the backward pass gathers from there).
  // (Writing the backward records straight to Gaussian-major order instead measured the same:
  // the random access only moves from the reads to the writes.)
  b.point_list = at::empty({N}, at::kInt);
  b.entry_slots = at::empty({N}, at::kInt);
  int32_t* point_list = b.point_list.data_ptr<int32_t>();
  int32_t* entry_slots = b.entry_slots.data_ptr<int32_t>();
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; c++) {
      int64_t* next = cursor.data() + c * num_tiles;
      for_each_in_depth_order(order, offsets, entry_tile.data(), c * chunk_len,
                              std::min(n, (c + 1) * chunk_len), [&](int32_t i, int64_t e) {
                                const int64_t slot = next[entry_tile[e]]++;
                                point_list[slot] = i;
                                entry_slots[e] = (int32_t)slot;
                              });
    }
  });
  return b;
}

// ---------------------------------------------------------------------------------------------
// Stage 5: blend. One task per tile; inside, every Gaussian of the tile's list (front to back)
// updates the tile's pixels row by row, 16 pixels at a time in one vectorised loop.

struct TileOrigin {
  int x0, y0;     // first pixel
  int w, h;       // pixels inside the image (partial tiles at the right and bottom edges)
};
TileOrigin tile_origin(int64_t tile, const RasterCamera& cam) {
  TileOrigin o;
  o.x0 = (int)(tile % cam.grid_x) * BLOCK_X;
  o.y0 = (int)(tile / cam.grid_x) * BLOCK_Y;
  o.w = std::min(BLOCK_X, cam.width - o.x0);
  o.h = std::min(BLOCK_Y, cam.height - o.y0);
  return o;
}

// Bit r set: the splat may be visible in row r of the tile (the exact test of blend.h,
// evaluated for LANES rows per vector); rows below the image are left out.
uint32_t splat_rows(const Splat& s, const TileOrigin& o) {
  using namespace cpu;
  const float px0 = (float)o.x0, px1 = (float)(o.x0 + o.w - 1);
  uint32_t bits = 0;
  for (int first = 0; first < BLOCK_Y; first += LANES) {
    vfloat row_y;
    vint row;
    for (int i = 0; i < LANES; i++) row_y[i] = (float)(o.y0 + first + i), row[i] = first + i;
    bits |= lane_bits(~splat_misses_row(s, px0, px1, row_y) & (row < o.h)) << first;
  }
  return bits;
}

// The blend loops walk a splat's rows this many at a time, each stage (exponent, exp, update) for
// all of their vectors together. The exp is a long dependency chain; laid side by side, the chains
// of two rows overlap in the processor (forward blend about 10 % faster than one row at a time
// with a branch per row and segment, backward likewise; four rows at a time measured no better).
constexpr int ROWS_PER_STEP = 2;
static_assert(BLOCK_Y % ROWS_PER_STEP == 0, "tile rows come in whole steps");
constexpr int STEP_VECTORS = ROWS_PER_STEP * cpu::SEGMENTS;  // row-major, like the tile state

// The tile rows [lo, hi) a blend loop walks for a splat: the span of its row mask (the rows a splat
// reaches are contiguous, it is convex), widened to whole steps of ROWS_PER_STEP rows within the
// tile; empty for an empty mask.
struct RowSpan {
  int lo, hi;
};
inline RowSpan step_span(uint32_t rows) {
  if (rows == 0) return {0, 0};
  RowSpan span{__builtin_ctz(rows), 32 - __builtin_clz(rows)};
  span.lo -= span.lo % ROWS_PER_STEP;
  span.hi += (ROWS_PER_STEP - span.hi % ROWS_PER_STEP) % ROWS_PER_STEP;
  return span;
}

// The splat's exponents in the ROWS_PER_STEP tile rows from row r: power[j * SEGMENTS + seg] for
// row r + j, whose vertical offset is dy[j].
inline void step_powers(const Splat& s, const RowPowerTerms<cpu::vfloat>* terms, const TileOrigin& o,
                        int r, cpu::vfloat* power, float* dy) {
  for (int j = 0; j < ROWS_PER_STEP; j++) {
    dy[j] = s.y - (float)(o.y0 + r + j);
    for (int seg = 0; seg < cpu::SEGMENTS; seg++) power[j * cpu::SEGMENTS + seg] = row_power(s, terms[seg], dy[j]);
  }
}

struct BlendOutputs {
  float* color;        // [3, H, W]
  float* invdepth;     // [H, W]
  float* final_T;      // [H, W]
  int32_t* n_contrib;  // [H, W]
};

// A tile row is SEGMENTS vectors of LANES pixels (one vector with AVX-512). Segment `seg` of a
// row covers the pixel columns x0 + seg * LANES + [0, LANES).
inline int segment_column(int seg, int lane) { return seg * cpu::LANES + lane; }

// Pixel x coordinates of one segment of a tile row, as a vector.
cpu::vfloat segment_pixel_x(const TileOrigin& o, int seg) {
  cpu::vfloat px;
  for (int i = 0; i < cpu::LANES; i++) px[i] = (float)(o.x0 + segment_column(seg, i));
  return px;
}

void blend_tile(int64_t tile, const RasterCamera& cam, const Splat* splats,
                const int32_t* point_list, const int64_t* ranges, const float* bg,
                const BlendOutputs& out) {
  using namespace cpu;
  const TileOrigin o = tile_origin(tile, cam);
  vfloat px[SEGMENTS];
  vint inside_x[SEGMENTS];
  for (int seg = 0; seg < SEGMENTS; seg++) {
    px[seg] = segment_pixel_x(o, seg);
    for (int i = 0; i < LANES; i++) inside_x[seg][i] = segment_column(seg, i) < o.w ? -1 : 0;
  }
  // Per-row state: one vector per row segment.
  vfloat T[BLOCK_Y][SEGMENTS], R[BLOCK_Y][SEGMENTS], G[BLOCK_Y][SEGMENTS], B[BLOCK_Y][SEGMENTS],
      D[BLOCK_Y][SEGMENTS];
  vint live[BLOCK_Y][SEGMENTS], last[BLOCK_Y][SEGMENTS];  // live: -1 while the pixel blends
  for (int r = 0; r < BLOCK_Y; r++)
    for (int seg = 0; seg < SEGMENTS; seg++) {
      T[r][seg] = splat(1.0f);
      R[r][seg] = G[r][seg] = B[r][seg] = D[r][seg] = splat(0.0f);
      live[r][seg] = r < o.h ? inside_x[seg] : splat_int(0);
      last[r][seg] = splat_int(0);
    }

  uint32_t live_rows = (1u << o.h) - 1;  // bit r: row r still has a pixel that blends
  const int64_t start = ranges[tile], end = ranges[tile + 1];
  SplatBatch batch(splats, point_list, start, end);
  for (int64_t k = start; k < end && live_rows != 0; k++) {
    const Splat& s = batch.forward(k);
    const vint position = splat_int((int32_t)(k - start + 1));
    RowPowerTerms<vfloat> terms[SEGMENTS];
    for (int seg = 0; seg < SEGMENTS; seg++) terms[seg] = row_power_terms(s, s.x - px[seg]);
    // The rows the splat reaches are contiguous (it is convex). The span is walked in steps of
    // ROWS_PER_STEP rows without a branch: rows in it that no longer blend have no live lane,
    // and rows the splat does not reach get alpha below the threshold, so neither changes a bit.
    const RowSpan span = step_span(splat_rows(s, o) & live_rows);
    vint finished = splat_int(0);
    for (int r = span.lo; r < span.hi; r += ROWS_PER_STEP) {
      vfloat power[STEP_VECTORS], alpha[STEP_VECTORS];
      float dy[ROWS_PER_STEP];
      step_powers(s, terms, o, r, power, dy);
      for (int k = 0; k < STEP_VECTORS; k++) alpha[k] = splat_alpha(s.opacity, exp_nonpositive(power[k]));
      vfloat *Tk = &T[r][0], *Rk = &R[r][0], *Gk = &G[r][0], *Bk = &B[r][0], *Dk = &D[r][0];
      vint *live_k = &live[r][0], *last_k = &last[r][0];
      for (int k = 0; k < STEP_VECTORS; k++) {
        const vfloat test_T = Tk[k] * (1.0f - alpha[k]);
        const vint valid = live_k[k] & (power[k] <= 0.0f) & (alpha[k] >= ALPHA_MIN);
        const vint finish = valid & (test_T < TRANSMITTANCE_MIN);
        const vint add = valid & ~finish;
        const vfloat w = select(add, alpha[k] * Tk[k], splat(0.0f));
        Rk[k] += w * s.r;
        Gk[k] += w * s.g;
        Bk[k] += w * s.b;
        Dk[k] += w * s.inv_depth;
        Tk[k] = select(add, test_T, Tk[k]);
        last_k[k] = select(add, position, last_k[k]);
        live_k[k] &= ~finish;
        finished |= finish;
      }
    }
    if (any(finished))  // rare: some pixel saturated; drop rows with no live pixel left
      for (int r = span.lo; r < span.hi; r++) {
        vint row_live = live[r][0];
        for (int seg = 1; seg < SEGMENTS; seg++) row_live |= live[r][seg];
        if (!any(row_live)) live_rows &= ~(1u << r);
      }
  }

  const int64_t HW = (int64_t)cam.width * cam.height;
  for (int r = 0; r < o.h; r++) {
    const int64_t row = (int64_t)(o.y0 + r) * cam.width + o.x0;
    for (int seg = 0; seg < SEGMENTS; seg++)
      for (int i = 0; i < LANES && segment_column(seg, i) < o.w; i++) {
        const int64_t pix = row + segment_column(seg, i);
        const float t = T[r][seg][i];
        out.color[pix] = R[r][seg][i] + t * bg[0];
        out.color[HW + pix] = G[r][seg][i] + t * bg[1];
        out.color[2 * HW + pix] = B[r][seg][i] + t * bg[2];
        out.invdepth[pix] = D[r][seg][i];
        out.final_T[pix] = t;
        out.n_contrib[pix] = last[r][seg][i];
      }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward stage 5: blend backward. One task per tile; the tile's list is walked back to front
// from its last contributor, recomputing each alpha; each (tile, Gaussian) entry gets its own
// gradient record, so no two tasks ever write the same memory.

void blend_backward_tile(int64_t tile, const RasterCamera& cam, const Splat* splats,
                         const int32_t* point_list, const int64_t* ranges, const float* bg,
                         const float* final_T, const int32_t* n_contrib, const float* dL_dcolor,
                         const float* dL_dinvdepth, SplatGrad* entry_grads) {
  using namespace cpu;
  const TileOrigin o = tile_origin(tile, cam);
  const int64_t start = ranges[tile], end = ranges[tile + 1];
  if (start == end) return;
  const int64_t HW = (int64_t)cam.width * cam.height;
  vfloat px[SEGMENTS];
  for (int seg = 0; seg < SEGMENTS; seg++) px[seg] = segment_pixel_x(o, seg);

  // Per-row state, one vector per row segment; pixels outside the image have contrib 0 and
  // never take part.
  BackwardPixel<vfloat> px_state[BLOCK_Y][SEGMENTS];
  vint contrib[BLOCK_Y][SEGMENTS];
  int32_t row_max[BLOCK_Y];
  int tile_max = 0;
  for (int r = 0; r < BLOCK_Y; r++) {
    row_max[r] = 0;
    for (int seg = 0; seg < SEGMENTS; seg++) {
      vfloat T_final{}, dp_r{}, dp_g{}, dp_b{}, dp_d{};
      contrib[r][seg] = splat_int(0);
      if (r < o.h) {
        const int64_t row = (int64_t)(o.y0 + r) * cam.width + o.x0;
        for (int i = 0; i < LANES && segment_column(seg, i) < o.w; i++) {
          const int64_t pix = row + segment_column(seg, i);
          T_final[i] = final_T[pix];
          contrib[r][seg][i] = n_contrib[pix];
          dp_r[i] = dL_dcolor[pix];
          dp_g[i] = dL_dcolor[HW + pix];
          dp_b[i] = dL_dcolor[2 * HW + pix];
          dp_d[i] = dL_dinvdepth ? dL_dinvdepth[pix] : 0.0f;
          row_max[r] = std::max(row_max[r], contrib[r][seg][i]);
        }
      }
      px_state[r][seg] = backward_pixel(T_final, dp_r, dp_g, dp_b, dp_d, bg);
    }
    tile_max = std::max(tile_max, row_max[r]);
  }

  // Entries behind every pixel's last contributor receive nothing.
  for (int64_t k = start + tile_max; k < end; k++) entry_grads[k] = SplatGrad{};

  const float half_w = 0.5f * cam.width, half_h = 0.5f * cam.height;
  vint row_max_v[BLOCK_Y / LANES];  // row_max, LANES rows per vector
  for (int r = 0; r < BLOCK_Y; r++) row_max_v[r / LANES][r % LANES] = row_max[r];
  SplatBatch batch(splats, point_list, start, end);
  for (int64_t k = start + tile_max - 1; k >= start; k--) {
    const Splat& s = batch.backward(k);
    const int32_t position = (int32_t)(k - start + 1);
    SplatGradSums<vfloat> sums{};
    vfloat dx[SEGMENTS];
    RowPowerTerms<vfloat> terms[SEGMENTS];
    for (int seg = 0; seg < SEGMENTS; seg++) {
      dx[seg] = s.x - px[seg];
      terms[seg] = row_power_terms(s, dx[seg]);
    }
    // Rows the splat may touch that have a pixel whose list reaches this entry.
    uint32_t reach = 0;
    for (int v = 0; v < BLOCK_Y / LANES; v++)
      reach |= lane_bits(row_max_v[v] >= position) << (v * LANES);
    // As in the forward pass, the span of rows in steps of ROWS_PER_STEP; rows of the span that
    // this entry does not reach have no valid lane. Only the gradient step keeps its branch: it
    // costs more than the exp, and only 57 % of the pixels visited take part (a trained model).
    bool touched = false;
    const RowSpan span = step_span(splat_rows(s, o) & reach);
    for (int r = span.lo; r < span.hi; r += ROWS_PER_STEP) {
      vfloat power[STEP_VECTORS], Gv[STEP_VECTORS], alpha[STEP_VECTORS];
      float dy[ROWS_PER_STEP];
      step_powers(s, terms, o, r, power, dy);
      for (int k = 0; k < STEP_VECTORS; k++) {
        Gv[k] = exp_nonpositive(power[k]);
        alpha[k] = splat_alpha(s.opacity, Gv[k]);
      }
      const vint* contrib_k = &contrib[r][0];
      BackwardPixel<vfloat>* state_k = &px_state[r][0];
      for (int k = 0; k < STEP_VECTORS; k++) {
        const vint valid = (position <= contrib_k[k]) & (power[k] <= 0.0f) & (alpha[k] >= ALPHA_MIN);
        if (!any(valid)) continue;
        touched = true;
        blend_backward_step(s, dx[k % SEGMENTS], dy[k / SEGMENTS], Gv[k], alpha[k], valid, state_k[k], sums);
      }
    }
    if (!touched) {
      entry_grads[k] = SplatGrad{};
      continue;
    }
    static_assert(sizeof(sums) == 10 * sizeof(vfloat), "SplatGradSums is 10 vectors");
    float m[10];
    hsum_each(reinterpret_cast<const vfloat*>(&sums), 10, m);
    entry_grads[k] = splat_grad(s, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9],
                                half_w, half_h);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Orchestration

const char* cpu_instruction_set() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#else
  return "generic";
#endif
}

ForwardResult rasterize_forward_cpu(const RasterSettings& s, const GaussianTensors& g) {
  const int64_t P = g.means3D.size(0);
  const int H = s.image_height, W = s.image_width;
  const RasterCamera cam = make_camera(s, s.campos);
  const GaussianArrays arrays = gaussian_arrays(g);

  StageTimer timer("forward");
  ForwardResult res;
  ForwardState& st = res.state;
  res.radii = at::empty({P}, at::kInt);
  st.radii = res.radii;
  st.splats = at::empty({P, SPLAT_FLOATS}, at::kFloat);
  st.clamped = at::empty({P, 3}, at::kByte);
  at::Tensor depths = at::empty({P}, at::kFloat);
  at::Tensor rects = at::empty({P, 4}, at::kInt);
  at::Tensor tiles_touched = at::empty({P}, at::kInt);
  at::Tensor tile_masks = at::empty({P}, at::kLong);
  static_assert(sizeof(TileRect) == 4 * sizeof(int32_t), "TileRect is 4 ints");
  const PreprocessBuffers pre = {reinterpret_cast<Splat*>(st.splats.data_ptr<float>()),
                                 st.clamped.data_ptr<uint8_t>(),
                                 res.radii.data_ptr<int32_t>(),
                                 depths.data_ptr<float>(),
                                 reinterpret_cast<TileRect*>(rects.data_ptr<int32_t>()),
                                 tiles_touched.data_ptr<int32_t>(),
                                 reinterpret_cast<uint64_t*>(tile_masks.data_ptr<int64_t>())};
  preprocess(arrays, P, cam, s.sh_degree, pre);
  timer.lap("preprocess");

  Binning b = bin_and_sort(pre, P, cam);
  timer.lap("bin+sort+ranges");
  st.entry_offsets = b.entry_offsets;
  st.entry_slots = b.entry_slots;
  st.point_list = b.point_list;
  st.tile_ranges = b.tile_ranges;
  res.num_rendered = b.point_list.numel();

  res.color = at::empty({3, H, W}, at::kFloat);
  res.invdepth = at::empty({1, H, W}, at::kFloat);
  st.final_T = at::empty({H, W}, at::kFloat);
  st.n_contrib = at::empty({H, W}, at::kInt);
  const BlendOutputs out = {res.color.data_ptr<float>(), res.invdepth.data_ptr<float>(),
                            st.final_T.data_ptr<float>(), st.n_contrib.data_ptr<int32_t>()};
  const float* bg = s.background.data_ptr<float>();
  const int32_t* point_list = st.point_list.data_ptr<int32_t>();
  const int64_t* ranges = st.tile_ranges.data_ptr<int64_t>();
  parallel_dynamic((int64_t)cam.grid_x * cam.grid_y, [&](int64_t tile) {
    blend_tile(tile, cam, pre.splats, point_list, ranges, bg, out);
  });
  timer.lap("blend");
  return res;
}

// Numbers the drawn Gaussians (those with tile entries) in order: record_of[i] = how many drawn
// Gaussians precede Gaussian i, or -1 if it was not drawn. Returns how many were drawn. Counted
// in fixed chunks, so the numbering does not depend on the threads.
int64_t number_drawn(const int64_t* offsets, int64_t P, int32_t* record_of) {
  constexpr int64_t CHUNK = 1 << 16;
  const int64_t chunks = (P + CHUNK - 1) / CHUNK;
  std::vector<int64_t> first(chunks + 1, 0);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; c++) {
      int64_t n = 0;
      for (int64_t i = c * CHUNK; i < std::min(P, (c + 1) * CHUNK); i++) n += offsets[i + 1] != offsets[i];
      first[c + 1] = n;
    }
  });
  for (int64_t c = 0; c < chunks; c++) first[c + 1] += first[c];
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; c++) {
      int64_t k = first[c];
      for (int64_t i = c * CHUNK; i < std::min(P, (c + 1) * CHUNK); i++)
        record_of[i] = offsets[i + 1] != offsets[i] ? (int32_t)k++ : -1;
    }
  });
  return first[chunks];
}

// Stage 7: preprocess backward, from each drawn Gaussian's summed blend-stage record to the
// gradients of its inputs. Every row of the gradients is written (zeros where not drawn).
// With ShGradient other than kTensor, the SH rows after the DC term go to scratch rows instead,
// LANES Gaussians' rows at a time, which Adam then consumes (kAdam) or nothing reads (kDiscard).
struct PreprocessBackward {
  GaussianArrays in;
  GaussianGradArrays out;
  const uint8_t* clamped;        // [P, 3] from the forward pass
  const int32_t* record_of;      // [P] each drawn Gaussian's record in splat_grads, -1: not drawn
  const SplatGrad* splat_grads;  // summed blend-stage records of the drawn Gaussians
  RasterCamera cam;
  int sh_degree;
  ShGradientUse sh_use;
  // kAdam: the SH rows (the parameter, updated in place) and their moments.
  float* sh_param;
  float* exp_avg;
  float* exp_avg_sq;
  AdamConstants adam;
  TorchAdamLayout adam_layout;
  const int32_t* adam_rows;  // sparse_adam: [P] radii, rows with 0 keep their values; or null

  static constexpr int64_t MAX_ROW = MAX_SH_COEFFS * 3;

  bool drawn(int64_t i) const { return record_of[i] >= 0; }
  const SplatGrad& record(int64_t i) const { return splat_grads[record_of[i]]; }
  bool scratch_rows() const { return sh_use != ShGradientUse::kTensor && in.sh; }

  // The SH rows of Gaussian i, read and written, fetched ahead of use.
  void prefetch_rows(int64_t i) const {
    if (!in.sh) return;
    const int64_t K = in.sh_stride;
    if (sh_use == ShGradientUse::kAdam) {
      for (const float* rows : {in.sh, static_cast<const float*>(exp_avg),
                                static_cast<const float*>(exp_avg_sq)})
        prefetch_row(rows, K, i, /*write=*/true);
      return;
    }
    prefetch_row(in.sh, K, i);
    if (out.sh) prefetch_row(out.sh, K, i, /*write=*/true);
  }

  // The SH gradient rows of Gaussians first .. first + count - 1, in `rows`, used up.
  void finish_sh_rows(int64_t first, int64_t count, const float* rows) const {
    if (sh_use != ShGradientUse::kAdam) return;
    const int64_t K = in.sh_stride;
    if (!adam_rows) {
      adam_span(sh_param, exp_avg, exp_avg_sq, rows, first * K, count * K, adam, adam_layout);
      return;
    }
    for (int64_t r = 0; r < count; r++)
      if (adam_rows[first + r] > 0)
        adam_span(sh_param, exp_avg, exp_avg_sq, rows + r * K, (first + r) * K, K, adam, adam_layout);
  }

  void one(int64_t i, int64_t end) const {
    if (i + ROW_PREFETCH_AHEAD < end) prefetch_rows(i + ROW_PREFETCH_AHEAD);
    out.zero_row(i);
    if (!scratch_rows()) {
      if (drawn(i)) preprocess_backward_one(i, in, out, clamped, cam, sh_degree, record(i));
      return;
    }
    float row[MAX_ROW] = {0};
    if (drawn(i)) preprocess_backward_one(i, in, out, clamped, cam, sh_degree, record(i), row);
    finish_sh_rows(i, 1, row);
  }

  // Gaussians first .. first + LANES - 1 (given by scale and rotation, coloured by SH): the
  // geometry's backward one Gaussian per lane, then each one's colour backward and stores.
  void lanes(int64_t first, int64_t end) const {
    using cpu::gather_field;
    using F = cpu::vfloat;
    cpu::vint drawn_lanes;
    bool any = false;
    for (int l = 0; l < cpu::LANES; l++) {
      drawn_lanes[l] = drawn(first + l) ? -1 : 0;
      any |= drawn(first + l);
    }
    float rows[cpu::LANES * MAX_ROW];
    const bool scratch = scratch_rows();
    if (scratch) std::fill(rows, rows + cpu::LANES * in.sh_stride, 0.0f);
    if (!any) {
      for (int l = 0; l < cpu::LANES; l++) {
        const int64_t i = first + l;
        if (i + ROW_PREFETCH_AHEAD < end) prefetch_rows(i + ROW_PREFETCH_AHEAD);
        out.zero_row(i);
      }
      if (scratch) finish_sh_rows(first, cpu::LANES, rows);
      return;
    }
    // The lanes' records side by side; Gaussians that were not drawn have none: zeros.
    SplatGrad block[cpu::LANES];
    for (int l = 0; l < cpu::LANES; l++) block[l] = drawn_lanes[l] ? record(first + l) : SplatGrad{};
    const float* records = reinterpret_cast<const float*>(block);
    auto record_field = [&](int f) { return gather_field(records, 0, SPLAT_GRAD_FLOATS, f); };
    SplatGradT<F> g;
    g.mean2d_x = record_field(0), g.mean2d_y = record_field(1);
    g.conic_a = record_field(2), g.conic_b = record_field(3), g.conic_c = record_field(4);
    g.opacity = record_field(5);
    g.r = record_field(6), g.g = record_field(7), g.b = record_field(8);
    g.inv_depth = record_field(9);
    static_assert(SPLAT_GRAD_FLOATS == 10, "the fields gathered above");
    const LaneGeometry lane = gather_geometry(in, first, cam.scale_modifier);
    const F opacity = gather_field(in.opacities, first, 1, 0);
    const GeometryGrads<F> geo = geometry_backward(lane.mean, lane.cov3d, opacity, cam, g);
    F dscale[3], drot[4];
    cov3d_backward(lane.scale, cam.scale_modifier, lane.rot, geo.dSigma, dscale, drot);

    for (int l = 0; l < cpu::LANES; l++) {
      const int64_t i = first + l;
      if (i + ROW_PREFETCH_AHEAD < end) prefetch_rows(i + ROW_PREFETCH_AHEAD);
      out.zero_row(i);
      if (!drawn_lanes[l]) continue;
      out.store_means2D(i, block[l]);
      const GaussianGrads o = out.at(i, scratch ? rows + l * in.sh_stride : nullptr);
      colour_backward(in.at(i), ClampedChannels(clamped, i).c, cam, sh_degree, block[l],
                      {{geo.dmean.x[l], geo.dmean.y[l], geo.dmean.z[l]}, geo.dopacity[l]}, o);
      for (int k = 0; k < 3; k++) o.scale[k] = dscale[k][l];
      for (int k = 0; k < 4; k++) o.rot[k] = drot[k][l];
    }
    if (scratch) finish_sh_rows(first, cpu::LANES, rows);
  }
};

BackwardResult rasterize_backward_cpu(const RasterSettings& s, const GaussianTensors& g,
                                      const ForwardState& st, const at::Tensor& grad_color,
                                      const at::Tensor& grad_invdepth,
                                      const GradientRequest& request) {
  const ShGradient& sh_gradient = request.sh;
  const int64_t P = g.means3D.size(0);
  const RasterCamera cam = make_camera(s, s.campos);
  const GaussianArrays arrays = gaussian_arrays(g);
  const Splat* splats = reinterpret_cast<const Splat*>(st.splats.data_ptr<float>());
  const int32_t* point_list = st.point_list.data_ptr<int32_t>();
  const int64_t* ranges = st.tile_ranges.data_ptr<int64_t>();
  const int64_t N = st.point_list.numel();
  StageTimer timer("backward");

  // Backward blend: one gradient record per tile entry (each one is written, so no zeroing).
  std::unique_ptr<SplatGrad[]> entry_grads(new SplatGrad[N]);
  const float* bg = s.background.data_ptr<float>();
  const float* final_T = st.final_T.data_ptr<float>();
  const int32_t* n_contrib = st.n_contrib.data_ptr<int32_t>();
  const float* dL_dcolor = grad_color.data_ptr<float>();
  const float* dL_dinvdepth = ptr_or_null<float>(grad_invdepth);
  parallel_dynamic((int64_t)cam.grid_x * cam.grid_y, [&](int64_t tile) {
    blend_backward_tile(tile, cam, splats, point_list, ranges, bg, final_T, n_contrib, dL_dcolor,
                        dL_dinvdepth, entry_grads.get());
  });
  timer.lap("blend backward");
  // What only blending reads goes now, so that its memory serves the gradients below (at 1M
  // Gaussians the splat records alone are 48 MB). The Python layer gives each forward state to
  // one backward pass only.
  release({st.splats, st.point_list, st.tile_ranges, st.final_T, st.n_contrib});

  // Each drawn Gaussian's entries summed in a fixed order into one record (records for the
  // drawn Gaussians only: at a million Gaussians most are out of any one view), and the entry
  // records freed before the gradients are allocated: at full resolution a Gaussian covers many
  // tiles, and its 40-byte entry records would otherwise sit in memory beside every gradient.
  const int64_t* offsets = st.entry_offsets.data_ptr<int64_t>();
  const int32_t* slots = st.entry_slots.data_ptr<int32_t>();
  std::unique_ptr<int32_t[]> record_of(new int32_t[P]);
  const int64_t drawn = number_drawn(offsets, P, record_of.get());
  std::unique_ptr<SplatGrad[]> splat_grads(new SplatGrad[std::max<int64_t>(drawn, 1)]);
  at::parallel_for(0, P, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      if (i + ROW_PREFETCH_AHEAD < end) {
        const int64_t j = i + ROW_PREFETCH_AHEAD;
        for (int64_t e = offsets[j]; e < offsets[j + 1]; e++) __builtin_prefetch(&entry_grads[slots[e]]);
      }
      if (record_of[i] < 0) continue;
      float sum[SPLAT_GRAD_FLOATS] = {0};
      for (int64_t e = offsets[i]; e < offsets[i + 1]; e++) {
        const float* rec = reinterpret_cast<const float*>(&entry_grads[slots[e]]);
        for (int f = 0; f < SPLAT_GRAD_FLOATS; f++) sum[f] += rec[f];
      }
      std::memcpy(&splat_grads[record_of[i]], sum, sizeof(SplatGrad));
    }
  });
  entry_grads.reset();
  release({st.entry_slots, st.entry_offsets});
  timer.lap("sum entries");

  // Not zeroed here: the loop below writes every row (zeros for Gaussians that were not drawn),
  // which costs nothing next to clearing tens of megabytes in a separate pass.
  const bool adam = sh_gradient.use == ShGradientUse::kAdam && g.sh.numel() > 0;
  BackwardResult res = allocate_gradients(g, /*zeroed=*/false,
                                          sh_gradient.use == ShGradientUse::kTensor,
                                          request.means2D);
  timer.lap("allocate grads");

  // Each drawn Gaussian's preprocess backward from its summed record.
  const ShGradient& sg = sh_gradient;
  const PreprocessBackward pb{
      arrays, gradient_arrays(res, arrays.sh_stride), st.clamped.data_ptr<uint8_t>(),
      record_of.get(), splat_grads.get(), cam, s.sh_degree, sh_gradient.use,
      adam ? g.sh.data_ptr<float>() : nullptr, adam ? sg.exp_avg.data_ptr<float>() : nullptr,
      adam ? sg.exp_avg_sq.data_ptr<float>() : nullptr,
      AdamConstants::at_step(sg.lr, sg.beta1, sg.beta2, sg.eps, sg.step),
      // sparse_adam has no torch reference: vector arithmetic throughout, as adam_rows_cpu.
      TorchAdamLayout(g.sh.numel() + (sg.visible_only ? sg.torch_lanes : 0), sg.torch_lanes),
      adam && sg.visible_only ? st.radii.data_ptr<int32_t>() : nullptr};
  // As in the forward pass: blocks of LANES from Gaussian 0 through the vector path, the rest
  // (and other kinds of input) one at a time.
  const int64_t blocks = arrays.scales && arrays.rotations && !arrays.cov3D && !arrays.colors
                             ? P / cpu::LANES : 0;
  at::parallel_for(0, blocks, 256 / cpu::LANES, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b++) pb.lanes(b * cpu::LANES, end * cpu::LANES);
  });
  at::parallel_for(blocks * cpu::LANES, P, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) pb.one(i, end);
  });
  timer.lap("preprocess backward");
  return res;
}

void adam_rows_cpu(at::Tensor& param, const at::Tensor& grad, const ShGradient& a,
                   const at::Tensor& rows) {
  const int64_t N = param.size(0), K = N > 0 ? param.numel() / N : 0;
  const AdamConstants c = AdamConstants::at_step(a.lr, a.beta1, a.beta2, a.eps, a.step);
  const TorchAdamLayout all_vector(param.numel() + a.torch_lanes, a.torch_lanes);
  float* p = param.data_ptr<float>();
  float* m = a.exp_avg.data_ptr<float>();
  float* v = a.exp_avg_sq.data_ptr<float>();
  const float* gr = grad.data_ptr<float>();
  const bool* flag = rows.data_ptr<bool>();
  at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++)
      if (flag[i]) adam_span(p, m, v, gr + i * K, i * K, K, c, all_vector);
  });
}

void adam_step_cpu(at::Tensor& param, const at::Tensor& grad, const ShGradient& a) {
  const int64_t n = param.numel();
  const AdamConstants c = AdamConstants::at_step(a.lr, a.beta1, a.beta2, a.eps, a.step);
  const TorchAdamLayout layout(n, a.torch_lanes);
  float* p = param.data_ptr<float>();
  float* m = a.exp_avg.data_ptr<float>();
  float* v = a.exp_avg_sq.data_ptr<float>();
  const float* gr = grad.data_ptr<float>();
  // Spans of any length and start, as the backward pass's blocks of rows.
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    adam_span(p, m, v, gr + begin, begin, end - begin, c, layout);
  });
}

at::Tensor mark_visible_cpu(const at::Tensor& means3D, const at::Tensor& viewmatrix) {
  const int64_t P = means3D.size(0);
  at::Tensor present = at::empty({P}, at::kBool);
  bool* out = present.data_ptr<bool>();
  const float* m = means3D.data_ptr<float>();
  const float* view = viewmatrix.data_ptr<float>();
  at::parallel_for(0, P, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++)
      out[i] = transform_point4x3(view, load3(m + 3 * i)).z > NEAR_PLANE;
  });
  return present;
}

}  // namespace dgr
