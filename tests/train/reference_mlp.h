// The uncoded single-process reference: the same model, initial weights,
// data and SGD on plain matrices. Coded training must follow it.
#ifndef POLYGUARD_TESTS_TRAIN_REFERENCE_MLP_H_
#define POLYGUARD_TESTS_TRAIN_REFERENCE_MLP_H_

#include <vector>

#include "polyguard/data/synthetic.h"
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
    std::vector<Matrix> x_aug, s;
    Matrix a = x;
    for (size_t i = 0; i < w.size(); ++i) {
      Matrix xa(a.rows() + 1, a.cols());
      xa.topRows(a.rows()) = a;
      xa.row(a.rows()).setOnes();
      x_aug.push_back(xa);
      s.push_back(w[i] * xa);
      a = Activate(model.layers[i].activation, s.back());
    }
    auto loss = SoftmaxCrossEntropy(a, labels).value();
    losses.push_back(loss.loss);
    Matrix grad = loss.gradient;
    for (size_t i = w.size(); i-- > 0;) {
      const Matrix ds = grad.cwiseProduct(ActivationDerivative(model.layers[i].activation, s[i]));
      grad = (w[i].transpose() * ds).topRows(model.layers[i].inputs);
      v[i] = sgd.momentum * v[i] + ds * x_aug[i].transpose();
      w[i] = (1 - sgd.learning_rate * sgd.weight_decay) * w[i] - sgd.learning_rate * v[i];
    }
  }
  return losses;
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_TRAIN_REFERENCE_MLP_H_
