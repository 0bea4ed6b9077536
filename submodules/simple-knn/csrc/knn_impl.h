#pragma once

#include <algorithm>
#include <cfloat>
#include <numeric>
#include <vector>

namespace simple_knn {
namespace detail {

constexpr int LEAF_SIZE = 16;

struct Node {
  float lo[3], hi[3];  // bounding box of the node's points
  int64_t begin, end;  // range in the permuted index array
  int64_t left, right; // children (-1 for a leaf)
};

class KdTree {
 public:
  KdTree(const float* pts, int64_t n) : pts_(pts), order_(n) {
    std::iota(order_.begin(), order_.end(), 0);
    nodes_.reserve(2 * (n / LEAF_SIZE + 1));
    if (n > 0) build(0, n);
  }

  // The k smallest squared distances from point `self` to the other points, ascending; slots
  // beyond the number of other points stay FLT_MAX.
  template <int K>
  void query(int64_t self, float best[K]) const {
    for (int k = 0; k < K; k++) best[k] = FLT_MAX;
    if (nodes_.empty()) return;
    const float q[3] = {pts_[3 * self], pts_[3 * self + 1], pts_[3 * self + 2]};
    int64_t stack[128];
    int top = 0;
    stack[top++] = 0;
    while (top > 0) {
      const Node& node = nodes_[stack[--top]];
      if (box_dist2(node, q) > best[K - 1]) continue;
      if (node.left < 0) {
        for (int64_t j = node.begin; j < node.end; j++) {
          const int64_t idx = order_[j];
          if (idx == self) continue;
          const float* p = pts_ + 3 * idx;
          const float dx = p[0] - q[0], dy = p[1] - q[1], dz = p[2] - q[2];
          const float d = dx * dx + dy * dy + dz * dz;
          if (d < best[K - 1]) {
            int k = K - 1;
            while (k > 0 && best[k - 1] > d) {
              best[k] = best[k - 1];
              k--;
            }
            best[k] = d;
          }
        }
        continue;
      }
      // Visit the nearer child first (pushed last).
      const Node& l = nodes_[node.left];
      const Node& r = nodes_[node.right];
      const bool left_first = box_dist2(l, q) <= box_dist2(r, q);
      stack[top++] = left_first ? node.right : node.left;
      stack[top++] = left_first ? node.left : node.right;
    }
  }

 private:
  static float box_dist2(const Node& n, const float q[3]) {
    float d = 0.0f;
    for (int a = 0; a < 3; a++) {
      const float e = q[a] < n.lo[a] ? n.lo[a] - q[a] : (q[a] > n.hi[a] ? q[a] - n.hi[a] : 0.0f);
      d += e * e;
    }
    return d;
  }

  int64_t build(int64_t begin, int64_t end) {
    const int64_t id = (int64_t)nodes_.size();
    nodes_.push_back(Node{});
    Node node;
    node.begin = begin;
    node.end = end;
    node.left = node.right = -1;
    for (int a = 0; a < 3; a++) {
      node.lo[a] = FLT_MAX;
      node.hi[a] = -FLT_MAX;
    }
    for (int64_t j = begin; j < end; j++)
      for (int a = 0; a < 3; a++) {
        const float v = pts_[3 * order_[j] + a];
        node.lo[a] = std::min(node.lo[a], v);
        node.hi[a] = std::max(node.hi[a], v);
      }
    if (end - begin > LEAF_SIZE) {
      int axis = 0;
      for (int a = 1; a < 3; a++)
        if (node.hi[a] - node.lo[a] > node.hi[axis] - node.lo[axis]) axis = a;
      const int64_t mid = begin + (end - begin) / 2;
      std::nth_element(order_.begin() + begin, order_.begin() + mid, order_.begin() + end,
                       [&](int64_t x, int64_t y) { return pts_[3 * x + axis] < pts_[3 * y + axis]; });
      node.left = build(begin, mid);
      node.right = build(mid, end);
    }
    nodes_[id] = node;
    return id;
  }

  const float* pts_;
  std::vector<int64_t> order_;
  std::vector<Node> nodes_;
};

}  // namespace detail

template <class ParallelFor>
void mean_sq_dist_3nn(const float* points, int64_t P, float* out, ParallelFor parallel_for) {
  const detail::KdTree tree(points, P);
  const int64_t others = P - 1;
  const int k_used = (int)std::min<int64_t>(KNN_NEIGHBOURS, std::max<int64_t>(others, 0));
  parallel_for(0, P, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      float best[KNN_NEIGHBOURS];
      tree.template query<KNN_NEIGHBOURS>(i, best);
      float sum = 0.0f;
      for (int k = 0; k < k_used; k++) sum += best[k];
      out[i] = k_used > 0 ? sum / k_used : 0.0f;
    }
  });
}

}  // namespace simple_knn
