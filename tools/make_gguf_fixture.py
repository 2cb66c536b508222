#!/usr/bin/env python3
"""Writes the GGUF dequantization fixture and its golden (issue 12, deliverable 8).

Dev-time only: the outputs are committed under tests/golden/gguf/ and the C++ tests never
need Python. Run with the oracle venv (it has the PyPI `gguf` package, ggml's own writer):

    /work/venv-oracle/bin/python tools/make_gguf_fixture.py [--out tests/golden/gguf]

Writes
  types.gguf                 one small tensor per ggml type sllm dequantizes, written by
                             gguf.GGUFWriter, plus one metadata key of every value type
  types_dequant.safetensors  gguf.quants.dequantize() of every tensor (f32, row-major,
                             the tensor's shape), which test_gguf_golden.cpp compares with
                             sllm's dequantization bit for bit
  types_expected.json        the metadata values written, for the reader's test
  tiny_llama.gguf            a random 2-layer Llama (tied head, as SmolLM2) converted the
                             way convert_hf_to_gguf.py does (Q/K rows permuted), tensors in
                             several types
  tiny_llama_logits.safetensors  ids (i32) and the logits Hugging Face transformers computes
                             after loading tiny_llama.gguf itself (from_pretrained(gguf_file=))

Tensor contents: random normal weights quantized by gguf.quants.quantize() where the
package can quantize the type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1). It cannot
quantize the k-quants (Q4_K, Q5_K, Q6_K have only dequantize_blocks in gguf-py's quants.py),
so their blocks are random bytes with the f16 scales overwritten by small finite values:
every quant and sub-scale bit pattern is exercised, and only the dequantization is compared.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from safetensors.numpy import save_file

SEED = 12
ROWS = 3  # rows per tensor; each row is two blocks (so a row spans blocks, and rows differ)

# type -> (byte offsets of the f16 scales inside one block), for the random-byte k-quants.
K_QUANT_SCALES = {T.Q4_K: (0, 2), T.Q5_K: (0, 2), T.Q6_K: (208,)}
QUANTIZABLE = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]


def random_k_quant_blocks(rng, qtype, n_blocks):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in K_QUANT_SCALES[qtype]:
        # A positive or negative scale of magnitude 2^-10 .. 2^-4: finite, weight-like.
        scales = (rng.uniform(2.0**-10, 2.0**-4, size=n_blocks) * rng.choice([-1, 1], size=n_blocks)).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "golden" / "gguf"))
    parser.add_argument("--fuzz-seed", help="only write the fuzz_gguf_tokenizer seed (a tokenizer, no tensors) to this file")
    args = parser.parse_args()
    if args.fuzz_seed:
        write_fuzz_seed(Path(args.fuzz_seed))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    writer = gguf.GGUFWriter(str(out / "types.gguf"), arch="llama")  # writes general.architecture
    expected = {
        "general.architecture": "llama",
        "sllm.test.u8": 250, "sllm.test.i8": -7, "sllm.test.u16": 65000, "sllm.test.i16": -30000,
        "sllm.test.u32": 4000000000, "sllm.test.i32": -2000000000, "sllm.test.f32": 0.1,
        "sllm.test.u64": 2**40 + 3, "sllm.test.i64": -(2**40), "sllm.test.f64": 1e-300, "sllm.test.bool": True,
        "sllm.test.string": "Grüße, 世界",
        "sllm.test.strings": ["<|im_start|>", "", "Ġhello", "é"],
        "sllm.test.ints": [1, -2, 3],
        "sllm.test.floats": [0.5, -0.25],
    }
    writer.add_uint8("sllm.test.u8", expected["sllm.test.u8"])
    writer.add_int8("sllm.test.i8", expected["sllm.test.i8"])
    writer.add_uint16("sllm.test.u16", expected["sllm.test.u16"])
    writer.add_int16("sllm.test.i16", expected["sllm.test.i16"])
    writer.add_uint32("sllm.test.u32", expected["sllm.test.u32"])
    writer.add_int32("sllm.test.i32", expected["sllm.test.i32"])
    writer.add_float32("sllm.test.f32", expected["sllm.test.f32"])
    writer.add_uint64("sllm.test.u64", expected["sllm.test.u64"])
    writer.add_int64("sllm.test.i64", expected["sllm.test.i64"])
    writer.add_float64("sllm.test.f64", expected["sllm.test.f64"])
    writer.add_bool("sllm.test.bool", expected["sllm.test.bool"])
    writer.add_string("sllm.test.string", expected["sllm.test.string"])
    writer.add_array("sllm.test.strings", expected["sllm.test.strings"])
    writer.add_array("sllm.test.ints", expected["sllm.test.ints"])  # gguf-py writes int lists as i32
    writer.add_array("sllm.test.floats", expected["sllm.test.floats"])  # and float lists as f32

    golden = {}
    for qtype in QUANTIZABLE + list(K_QUANT_SCALES):
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        cols = 2 * max(block_size, 32)
        name = f"w.{qtype.name.lower()}"
        if qtype in K_QUANT_SCALES:
            raw = random_k_quant_blocks(rng, qtype, ROWS * cols // block_size).reshape(ROWS, -1)
        else:
            weights = rng.standard_normal((ROWS, cols)).astype(np.float32) * np.float32(0.05)
            raw = gguf.quants.quantize(weights, qtype)
        # Byte-shaped arrays of quantized types need raw_dtype; the writer turns the byte shape
        # back into the element shape (quant_shape_from_byte_shape).
        writer.add_tensor(name, raw, raw_dtype=qtype)
        golden[name] = np.ascontiguousarray(gguf.quants.dequantize(raw, qtype).astype(np.float32))
        assert golden[name].shape == (ROWS, cols), (name, golden[name].shape)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    save_file(golden, str(out / "types_dequant.safetensors"))
    (out / "types_expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")

    # Read the file back with gguf-py's own reader: the golden is the dequantization of
    # exactly the bytes on disk.
    reader = gguf.GGUFReader(str(out / "types.gguf"))
    for t in reader.tensors:
        again = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(golden[t.name].shape)
        assert np.array_equal(again.view(np.uint32), golden[t.name].view(np.uint32)), t.name
    for f in sorted(out.glob("types*")):
        print(f"{f}: {f.stat().st_size} bytes")

    write_tiny_llama(out, np.random.default_rng(SEED + 1))


# The tiny Llama: every matrix a different type (rows of 64 or 128 elements: no k-quants,
# whose rows are 256 long; those are covered by types.gguf).
LLAMA = dict(vocab=320, hidden=64, heads=4, kv_heads=2, inner=128, layers=2, ctx=64, theta=100000.0, eps=1e-5)
LLAMA_TYPES = {"token_embd": T.Q8_0, "attn_q": T.Q4_0, "attn_k": T.Q4_1, "attn_v": T.Q5_1, "attn_output": T.F16,
               "ffn_gate": T.Q8_0, "ffn_up": T.BF16, "ffn_down": T.Q5_0}


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py, LlamaModel.permute: interleave each head's two rotary halves."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# The tiny vocabulary's split: llama-bpe (Llama-3's regex), where llama.cpp and transformers
# agree (transformers 5 maps it to the same Split regex; it has no entry for "smollm").
TINY_PRE = "llama-bpe"
TINY_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
TINY_CORPUS = ("the cat sat on the mat. the dog ate the bone! a tokenizer merges the most frequent pair "
               "of tokens, then the next: 12 + 30 = 42, and it keeps going until the vocabulary is full.")
TINY_TEXTS = ["the cat sat on the mat", "The Dog ate 1234 bones!!", "  spaces   and\ttabs\n\nnewlines ",
              "héllo wörld ✓ 日本", "<|im_start|>user\nhi<|im_end|>\n", "def f(x):\n    return x*2"]


def tiny_bpe_vocab(vocab):
    """256 byte tokens in GPT-2's spelling, BPE merges of TINY_CORPUS (words with their leading
    space, most frequent pair first, ties by first appearance), and three control tokens."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    spell = bytes_to_unicode()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    words = [[spell[b] for b in w.encode()] for w in TINY_CORPUS.replace(" ", "\0 ").split("\0")]
    tokens = [spell[b] for b in range(256)]
    merges = []
    while len(tokens) + len(specials) < vocab:
        counts = {}
        for w in words:
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        best = max(counts, key=lambda p: counts[p])  # dicts keep insertion order: ties go to the first seen
        merges.append(f"{best[0]} {best[1]}")
        if best[0] + best[1] not in tokens:  # two merges may spell the same token
            tokens.append(best[0] + best[1])
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i:i + 2] = [best[0] + best[1]]
                i += 1
    return specials + tokens, merges, [3] * len(specials) + [1] * len(tokens)


def write_tiny_tokenizer_golden(out, path):
    """Ids transformers' tokenizer built from tiny_llama.gguf gives TINY_TEXTS (special tokens
    matched, no BOS added): tests/tokenizer/test_gguf_tokenizer.cpp compares sllm's."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(out), gguf_file=path.name)
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in TINY_TEXTS]
    golden = {"pre": TINY_PRE, "bos": tok.bos_token, "eos": tok.eos_token, "chat_template": TINY_TEMPLATE, "cases": cases}
    (out / "tiny_tokenizer.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")


def write_fuzz_seed(path):
    """tests/fuzz/corpus/gguf_tokenizer: the tiny vocabulary cut to 272 ids, no tensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, merges, types = tiny_bpe_vocab(272)
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{path}: {path.stat().st_size} bytes")


def write_tiny_llama(out, rng):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    L = LLAMA
    torch.manual_seed(SEED)
    cfg = LlamaConfig(vocab_size=L["vocab"], hidden_size=L["hidden"], intermediate_size=L["inner"],
                      num_hidden_layers=L["layers"], num_attention_heads=L["heads"],
                      num_key_value_heads=L["kv_heads"], max_position_embeddings=L["ctx"],
                      rope_theta=L["theta"], rms_norm_eps=L["eps"], tie_word_embeddings=True)
    hf = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # norms away from 1 so a wrong norm mapping shows
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in hf.state_dict().items()}

    path = out / "tiny_llama.gguf"
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_context_length(L["ctx"])
    w.add_embedding_length(L["hidden"])
    w.add_block_count(L["layers"])
    w.add_feed_forward_length(L["inner"])
    w.add_head_count(L["heads"])
    w.add_head_count_kv(L["kv_heads"])
    w.add_rope_freq_base(L["theta"])
    w.add_layer_norm_rms_eps(L["eps"])
    w.add_rope_dimension_count(L["hidden"] // L["heads"])
    w.add_vocab_size(L["vocab"])
    # A byte-level BPE vocabulary (tokenizer.ggml.model "gpt2", as SmolLM2's) that fills the
    # vocab: 256 byte tokens, merges learned from a few sentences, 3 control tokens.
    tokens, merges, types = tiny_bpe_vocab(L["vocab"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(TINY_PRE)
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.add_token_types(types)
    w.add_bos_token_id(tokens.index("<|im_start|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_unk_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(TINY_TEMPLATE)

    def add(gguf_name, arr, qtype):
        if qtype == T.F32:
            w.add_tensor(gguf_name, arr)
        else:
            w.add_tensor(gguf_name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)

    add("token_embd.weight", sd["model.embed_tokens.weight"], LLAMA_TYPES["token_embd"])
    add("output_norm.weight", sd["model.norm.weight"], T.F32)
    hf_names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                "ffn_down": "mlp.down_proj"}
    for i in range(L["layers"]):
        add(f"blk.{i}.attn_norm.weight", sd[f"model.layers.{i}.input_layernorm.weight"], T.F32)
        add(f"blk.{i}.ffn_norm.weight", sd[f"model.layers.{i}.post_attention_layernorm.weight"], T.F32)
        for g, h in hf_names.items():
            arr = sd[f"model.layers.{i}.{h}.weight"]
            if g == "attn_q":
                arr = permute(arr, L["heads"], L["heads"])
            if g == "attn_k":
                arr = permute(arr, L["heads"], L["kv_heads"])
            add(f"blk.{i}.{g}.weight", np.ascontiguousarray(arr), LLAMA_TYPES[g])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # The golden: transformers reading the GGUF file itself (its own dequantization and
    # un-permutation), so the C++ loader is checked against an independent reading.
    loaded = AutoModelForCausalLM.from_pretrained(str(out), gguf_file=path.name, torch_dtype=torch.float32).eval()
    ids = rng.integers(0, L["vocab"], size=(2, 12)).astype(np.int32)
    with torch.no_grad():
        logits = loaded(torch.from_numpy(ids.astype(np.int64))).logits.numpy().astype(np.float32)
    save_file({"ids": ids, "logits": np.ascontiguousarray(logits)}, str(out / "tiny_llama_logits.safetensors"))
    print(f"{path}: {path.stat().st_size} bytes; logits {logits.shape}")
    write_tiny_tokenizer_golden(out, path)


if __name__ == "__main__":
    main()
