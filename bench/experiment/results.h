// The output of one experiment: a CSV of finished points that survives an
// interruption (a rerun skips the points already in it), progress lines on
// stderr, gnuplot plots and a markdown summary.
#ifndef POLYGUARD_BENCH_EXPERIMENT_RESULTS_H_
#define POLYGUARD_BENCH_EXPERIMENT_RESULTS_H_

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "polyguard/base/status.h"

namespace polyguard::experiment {

// A CSV whose first column is a point's key. Rows are appended and flushed
// one by one; reopening keeps every complete row (a row cut short by an
// interruption is dropped) and refuses a file written with other columns.
class ResultTable {
 public:
  static StatusOr<ResultTable> Open(const std::string& path, std::vector<std::string> columns);

  bool Has(const std::string& key) const { return index_.count(key) > 0; }
  // The row of `key` (Has must be true), by column name.
  std::string Get(const std::string& key, const std::string& column) const;
  double GetNumber(const std::string& key, const std::string& column) const;
  // Appends row (row[0] is the key; one value per column) and flushes it.
  Status Append(const std::vector<std::string>& row);
  const std::vector<std::vector<std::string>>& rows() const { return rows_; }
  int resumed() const { return resumed_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
  std::map<std::string, size_t> index_;
  int resumed_ = 0;
};

// "[name] 12/40 P=10 errors=3 (2.1 s)" lines on stderr.
class Progress {
 public:
  Progress(std::string name, int total) : name_(std::move(name)), total_(total) {}
  void Done(const std::string& what, bool resumed);

 private:
  std::string name_;
  int total_;
  int done_ = 0;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Formats a number for CSV and tables: %.6g.
std::string Num(double x);

// One plotted series: (x, y) points.
struct Series {
  std::string title;
  std::vector<std::pair<double, double>> points;
  std::string style = "linespoints";  // gnuplot "with" style
};

struct PlotSpec {
  std::string title, xlabel, ylabel;
  bool logx = false, logy = false;
  std::vector<Series> series;
  std::string extra;  // more gnuplot commands (ranges, key position)
};

// Writes DIR/NAME.dat and DIR/NAME.gp and runs gnuplot to make DIR/NAME.png.
// FailedPrecondition when gnuplot is missing or fails (the data stay).
Status Plot(const std::string& dir, const std::string& name, const PlotSpec& plot);

Status WriteText(const std::string& path, const std::string& text);

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_RESULTS_H_
