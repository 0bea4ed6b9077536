// Exact 3-nearest-neighbour mean squared distance (the original's distCUDA2), torch-free.
// A k-d tree with small leaf buckets: O(P log P) build, about O(log P) per query.
#pragma once

#include <cstdint>

namespace simple_knn {

// Number of nearest other points averaged (the original's 3).
constexpr int KNN_NEIGHBOURS = 3;

// points: [P][3]. out[i] = mean of the squared distances from point i to its (up to) 3 nearest
// other points (duplicates count, at distance 0). With fewer than 4 points, the mean is over the
// P - 1 others; a single point gets 0. `parallel_for(begin, end, body)` runs query ranges.
template <class ParallelFor>
void mean_sq_dist_3nn(const float* points, int64_t P, float* out, ParallelFor parallel_for);

}  // namespace simple_knn

#include "knn_impl.h"
