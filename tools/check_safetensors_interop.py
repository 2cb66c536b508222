#!/usr/bin/env python3
"""Dev-time interop check between sllm's safetensors code and Hugging Face `safetensors`.

Not part of `make test` (needs `pip install safetensors numpy`).

  python3 tools/check_safetensors_interop.py --fixture
      (Re)writes tests/io/fixtures/python_written.safetensors with the Python package; the
      C++ test Safetensors.ReadsFileWrittenByPythonSafetensors reads it in every `make test`.

  python3 tools/check_safetensors_interop.py [--build build]
      Runs test_io's SafetensorsInterop.WriteForPython to write a file with sllm's writer,
      then loads it with the Python package (its Rust core validates the file) and checks
      every value.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import safetensors
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "io", "fixtures", "python_written.safetensors")


def write_fixture():
    # The values are documented next to each read in tests/io/test_safetensors.cpp.
    tensors = {
        "weight": np.arange(12, dtype=np.float32).reshape(3, 4) / 4,
        "ids": np.array([-3, 0, 1 << 40], dtype=np.int64),
        "half": np.array([1.0, -2.0, 0.5], dtype=np.float16),
        "mask": np.array([True, False, True]),
        "scalar": np.array(7, dtype=np.uint8),
        "nothing": np.zeros((0, 3), dtype=np.float64),
    }
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    save_file(tensors, FIXTURE, metadata={"format": "np"})
    print(f"wrote {FIXTURE} with safetensors {safetensors.__version__}")


def check_sllm_written(build):
    test_io = os.path.join(build, "tests", "test_io")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sllm_written.safetensors")
        env = dict(os.environ, SLLM_SAFETENSORS_INTEROP_OUT=path)
        subprocess.run([test_io, "--gtest_filter=SafetensorsInterop.WriteForPython"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        with open(path, "rb") as f:
            raw = f.read()
        # deserialize() runs the reference validation and hands back raw bytes for every dtype
        # (numpy has no bfloat16).
        tensors = {name: t for name, t in safetensors.deserialize(raw)}
        with safetensors.safe_open(path, framework="np") as f:
            metadata = f.metadata()

    def array(name, dtype):
        t = tensors[name]
        return np.frombuffer(bytes(t["data"]), dtype=dtype).reshape(t["shape"])

    assert metadata == {"format": "sllm"}, metadata
    assert tensors["weight"]["dtype"] == "F32" and tensors["weight"]["shape"] == [3, 4]
    assert np.array_equal(array("weight", "<f4"), np.arange(12, dtype=np.float32).reshape(3, 4) / 4)
    assert np.array_equal(array("ids", "<i8"), np.array([-3, 0, 1 << 40]))
    assert tensors["bf16"]["dtype"] == "BF16"
    assert np.array_equal(array("bf16", "<u2"), np.array([0x3F80, 0xC000]))  # 1.0, -2.0
    assert tensors["scalar"]["shape"] == [] and array("scalar", "u1") == 7
    assert tensors["nothing"]["shape"] == [0, 3] and len(tensors["nothing"]["data"]) == 0
    print(f"OK: safetensors {safetensors.__version__} read sllm's file ({len(raw)} bytes, {len(tensors)} tensors)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", action="store_true", help="rewrite the committed Python-written fixture")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="CMake build dir holding tests/test_io")
    args = parser.parse_args()
    if args.fixture:
        write_fixture()
    else:
        check_sllm_written(args.build)


if __name__ == "__main__":
    sys.exit(main())
