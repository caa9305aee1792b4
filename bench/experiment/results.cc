#include "experiment/results.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace polyguard::experiment {
namespace {

std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> out;
  std::string item;
  std::stringstream ss(line);
  while (std::getline(ss, item, ',')) out.push_back(item);
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

std::string JoinCsv(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += items[i];
  }
  return out;
}

}  // namespace

std::string Num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", x);
  return buf;
}

StatusOr<ResultTable> ResultTable::Open(const std::string& path, std::vector<std::string> columns) {
  ResultTable t;
  t.path_ = path;
  t.columns_ = std::move(columns);
  const std::string header = JoinCsv(t.columns_);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return InternalError(path + ": cannot create its folder: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::stringstream all;
    all << in.rdbuf();
    const std::string text = all.str();
    size_t pos = 0;
    bool first = true;
    while (pos < text.size()) {
      const size_t end = text.find('\n', pos);
      if (end == std::string::npos) break;  // cut short by an interruption
      const std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      if (first) {
        if (line != header) {
          return FailedPreconditionError(path + " was written with other columns ('" + line +
                                         "'); remove it to start this experiment over");
        }
        first = false;
        continue;
      }
      std::vector<std::string> row = SplitCsv(line);
      if (row.size() != t.columns_.size()) break;
      t.index_[row[0]] = t.rows_.size();
      t.rows_.push_back(std::move(row));
    }
    t.resumed_ = static_cast<int>(t.rows_.size());
  }
  // Rewrite what was kept (drops a partial last line), then append.
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InternalError(path + ": cannot write");
  out << header << '\n';
  for (const auto& row : t.rows_) out << JoinCsv(row) << '\n';
  out.flush();
  if (!out) return InternalError(path + ": write failed");
  return t;
}

std::string ResultTable::Get(const std::string& key, const std::string& column) const {
  const auto& row = rows_.at(index_.at(key));
  for (size_t i = 0; i < columns_.size(); ++i)
    if (columns_[i] == column) return row[i];
  return "";
}

double ResultTable::GetNumber(const std::string& key, const std::string& column) const {
  return std::strtod(Get(key, column).c_str(), nullptr);
}

Status ResultTable::Append(const std::vector<std::string>& row) {
  if (row.size() != columns_.size()) {
    return InternalError(path_ + ": row with " + std::to_string(row.size()) + " values for " +
                         std::to_string(columns_.size()) + " columns");
  }
  std::ofstream out(path_, std::ios::binary | std::ios::app);
  out << JoinCsv(row) << '\n';
  out.flush();
  if (!out) return InternalError(path_ + ": write failed");
  index_[row[0]] = rows_.size();
  rows_.push_back(row);
  return Status::Ok();
}

void Progress::Done(const std::string& what, bool resumed) {
  ++done_;
  const auto now = std::chrono::steady_clock::now();
  const double s = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  if (resumed) {
    std::fprintf(stderr, "[%s] %d/%d %s (already done)\n", name_.c_str(), done_, total_,
                 what.c_str());
  } else {
    std::fprintf(stderr, "[%s] %d/%d %s (%.1f s)\n", name_.c_str(), done_, total_, what.c_str(), s);
  }
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) return InternalError(path + ": write failed");
  return Status::Ok();
}

Status Plot(const std::string& dir, const std::string& name, const PlotSpec& plot) {
  std::ostringstream dat;
  for (size_t s = 0; s < plot.series.size(); ++s) {
    if (s) dat << "\n\n";
    dat << "# " << plot.series[s].title << '\n';
    for (const auto& [x, y] : plot.series[s].points) {
      if (std::isfinite(x) && std::isfinite(y) && (!plot.logy || y > 0) && (!plot.logx || x > 0))
        dat << Num(x) << ' ' << Num(y) << '\n';
    }
    dat << "nan nan\n";  // keeps an empty series a valid block
  }
  POLYGUARD_RETURN_IF_ERROR(WriteText(dir + "/" + name + ".dat", dat.str()));
  std::ostringstream gp;
  gp << "set terminal pngcairo size 1000,720 enhanced font 'sans,11'\n"
     << "set output '" << name << ".png'\n"
     << "set title \"" << plot.title << "\"\n"
     << "set xlabel \"" << plot.xlabel << "\"\n"
     << "set ylabel \"" << plot.ylabel << "\"\n"
     << "set grid\nset key below maxrows 4 font ',10'\n";
  if (plot.logx) gp << "set logscale x\nset format x '10^{%L}'\n";
  if (plot.logy) gp << "set logscale y\nset format y '10^{%L}'\n";
  gp << plot.extra;
  gp << "plot ";
  for (size_t s = 0; s < plot.series.size(); ++s) {
    if (s) gp << ", \\\n     ";
    gp << "'" << name << ".dat' index " << s << " with " << plot.series[s].style << " title \""
       << plot.series[s].title << "\"";
  }
  gp << '\n';
  POLYGUARD_RETURN_IF_ERROR(WriteText(dir + "/" + name + ".gp", gp.str()));
  const std::string cmd = "cd '" + dir + "' && gnuplot '" + name + ".gp' 2>'" + name + ".gp.log'";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    return FailedPreconditionError("gnuplot failed for " + dir + "/" + name +
                                   ".gp (is gnuplot installed? scripts/setup installs it; see " +
                                   name + ".gp.log); the CSV and data are written");
  }
  return Status::Ok();
}

}  // namespace polyguard::experiment
