#!/usr/bin/env python3
"""Reads codes_bench JSON (--benchmark_format=json) and prints, per case,
(encode + declared roundoff scale + decode) / (local shard product), for clean
decodes and for decodes with the most correctable errors; then (encode + clean
decode) / (local product) without the declared scale (issue 19's figure), and
the floor of a decode that reads every result once (ReadResults / local
product).

    build/bench/codes_bench --benchmark_format=json > codes.json
    bench/codes/ratios.py codes.json
"""
import json
import re
import sys

data = json.load(open(sys.argv[1]))
times = {}
for b in data["benchmarks"]:
    if b.get("error_occurred"):
        continue
    m = re.match(r"BM_(\w+)/N:(\d+)/B:(\d+)(?:/P:(\d+)/n:(\d+))?", b["name"])
    if not m:
        continue
    kind, n, batch = m.group(1), int(m.group(2)), int(m.group(3))
    p = (int(m.group(4)), int(m.group(5))) if m.group(4) else None
    times[(kind, n, batch, p)] = b["cpu_time"]

print("N,B,P,n,local_product_us,encode_us,scale_us,decode_clean_us,decode_errors_us,"
      "ratio_clean,ratio_errors,uncoded_over_local,encode_clean_ratio,read_floor_ratio")
for (kind, n, batch, p), t in sorted(times.items()):
    if kind != "LocalProduct":
        continue
    enc = times.get(("Encode", n, batch, p))
    # The declaration per product, and half the shard's sums (kept from one
    # update to the next, they serve a step's forward and transpose product).
    scale = (times.get(("RoundoffScale", n, batch, p), 0.0) +
             0.5 * times.get(("ShardAbsSums", n, batch, p), 0.0))
    dc = times.get(("DecodeClean", n, batch, p))
    de = times.get(("DecodeErrors", n, batch, p))
    unc = times.get(("Uncoded", n, batch, None))
    read = times.get(("ReadResults", n, batch, p))
    if None in (enc, dc, de):
        continue
    print(f"{n},{batch},{p[0]},{p[1]},{t:.1f},{enc:.1f},{scale:.1f},{dc:.1f},{de:.1f},"
          f"{(enc + scale + dc) / t:.3f},{(enc + scale + de) / t:.3f},"
          f"{(unc / t) if unc else float('nan'):.2f},{(enc + dc) / t:.3f},"
          f"{(read / t) if read else float('nan'):.3f}")
