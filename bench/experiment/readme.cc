// polyguard-experiment readme: regenerates README sections from summaries.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "experiment/experiments.h"
#include "experiment/results.h"

namespace polyguard::experiment {

Status UpdateReadme(const std::string& readme, const std::string& out_dir) {
  std::ifstream in(readme, std::ios::binary);
  if (!in) return NotFoundError(readme + ": cannot read");
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  size_t pos = 0;
  int replaced = 0;
  const std::string open = "<!-- results:";
  while ((pos = text.find(open, pos)) != std::string::npos) {
    const size_t name_end = text.find(" -->", pos);
    if (name_end == std::string::npos) break;
    const std::string name = text.substr(pos + open.size(), name_end - pos - open.size());
    const std::string close = "<!-- /results:" + name + " -->";
    const size_t end = text.find(close, name_end);
    if (end == std::string::npos) return InvalidArgumentError(readme + ": no '" + close + "'");
    std::ifstream summary(out_dir + "/" + name + "/summary.md", std::ios::binary);
    if (!summary) {
      std::fprintf(stderr, "readme: no %s/%s/summary.md yet; section left as is\n", out_dir.c_str(),
                   name.c_str());
      pos = end;
      continue;
    }
    std::stringstream body;
    body << summary.rdbuf();
    const size_t body_start = name_end + 4;
    // (Built piece by piece: GCC 12 warns falsely on "\n" + body.str() here.)
    std::string section = "\n";
    section += body.str();
    text.replace(body_start, end - body_start, section);
    pos = text.find(close, body_start) + close.size();
    ++replaced;
  }
  std::fprintf(stderr, "readme: %d sections regenerated\n", replaced);
  return WriteText(readme, text);
}

}  // namespace polyguard::experiment
