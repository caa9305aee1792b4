// The uncoded single-process reference: the same model (dense and
// convolution layers, computed directly), initial weights,
// data and SGD on plain matrices. Coded training must follow it.
#ifndef POLYGUARD_TESTS_TRAIN_REFERENCE_MLP_H_
#define POLYGUARD_TESTS_TRAIN_REFERENCE_MLP_H_

#include <vector>

#include "polyguard/conv/convolution.h"
#include "polyguard/data/synthetic.h"
#include "polyguard/nn/max_pool.h"
#include "polyguard/nn/sequential.h"
#include "polyguard/nn/softmax_cross_entropy.h"
#include "polyguard/optim/sgd.h"

namespace polyguard::testing {

// Loss of every step 1..steps.
inline std::vector<double> ReferenceLosses(const SequentialOptions& model, const SgdOptions& sgd,
                                           const SyntheticClassification& data, int steps) {
  std::vector<Matrix> w, v;
  for (size_t i = 0; i < model.layers.size(); ++i) {
    w.push_back(InitialWeights(model.layers[i], model.seed, int(i)));
    v.push_back(Matrix::Zero(w.back().rows(), w.back().cols()));
  }
  std::vector<double> losses;
  for (int64_t step = 1; step <= steps; ++step) {
    Matrix x;
    std::vector<int> labels;
    data.Batch(step, model.batch, &x, &labels);
    std::vector<Matrix> inputs, s;
    std::vector<std::vector<int64_t>> argmax(w.size());
    Matrix a = x;
    for (size_t i = 0; i < w.size(); ++i) {
      const LayerSpec& l = model.layers[i];
      inputs.push_back(a);
      if (l.kind == LayerKind::kConv) {
        const int64_t fs = l.conv.filter_size(),
                      spatial = int64_t(l.conv.out_height()) * l.conv.out_width();
        Matrix y = Conv2d(l.conv, w[i].leftCols(fs), a);
        for (int n = 0; n < l.conv.filters; ++n)
          y.middleRows(n * spatial, spatial).array() += w[i](n, fs);
        s.push_back(y);
        a = Activate(l.activation, y);
        if (l.pool > 0) {
          Matrix pooled;
          MaxPool2d(PoolAfter(l.conv, l.pool, l.pool_stride), a, &pooled, &argmax[i]);
          a = pooled;
        }
      } else {
        Matrix xa(a.rows() + 1, a.cols());
        xa.topRows(a.rows()) = a;
        xa.row(a.rows()).setOnes();
        s.push_back(w[i] * xa);
        a = Activate(l.activation, s.back());
      }
    }
    auto loss = SoftmaxCrossEntropy(a, labels).value();
    losses.push_back(loss.loss);
    Matrix grad = loss.gradient;
    for (size_t i = w.size(); i-- > 0;) {
      const LayerSpec& l = model.layers[i];
      Matrix g;  // the batch gradient of [W | b]
      if (l.kind == LayerKind::kConv) {
        const int64_t fs = l.conv.filter_size(),
                      spatial = int64_t(l.conv.out_height()) * l.conv.out_width();
        if (l.pool > 0)
          grad = MaxPool2dBackward(PoolAfter(l.conv, l.pool, l.pool_stride), grad, argmax[i]);
        const Matrix ds = grad.cwiseProduct(ActivationDerivative(l.activation, s[i]));
        grad = Conv2dInputGradient(l.conv, w[i].leftCols(fs), ds);
        g.resize(w[i].rows(), w[i].cols());
        g.leftCols(fs) = Conv2dFilterGradient(l.conv, inputs[i], ds);
        for (int n = 0; n < l.conv.filters; ++n)
          g(n, fs) = ds.middleRows(n * spatial, spatial).sum();
      } else {
        const Matrix ds = grad.cwiseProduct(ActivationDerivative(l.activation, s[i]));
        grad = (w[i].transpose() * ds).topRows(l.inputs);
        g.resize(w[i].rows(), w[i].cols());
        g.leftCols(l.inputs) = ds * inputs[i].transpose();
        g.rightCols(1) = ds.rowwise().sum();
      }
      v[i] = sgd.momentum * v[i] + g;
      w[i] = (1 - sgd.learning_rate * sgd.weight_decay) * w[i] - sgd.learning_rate * v[i];
    }
  }
  return losses;
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_TRAIN_REFERENCE_MLP_H_
