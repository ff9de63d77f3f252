"""Writes the PyTorch reference fixtures of the inconsistency detector's networks.

Runs OUTSIDE the project's environment, in a throwaway venv that has torch (the tests never
need torch):

  python3.11 -m venv /tmp/venvs/inconsistency-fixtures
  /tmp/venvs/inconsistency-fixtures/bin/pip install -r tools/requirements-fixtures.txt
  /tmp/venvs/inconsistency-fixtures/bin/python tools/make_inconsistency_fixtures.py \
      --out tests/fixtures/inconsistency

Reference implementations, all with random weights:
* AdaFace's IResNet, written here in PyTorch from the architecture facts (AdaFace's net.py is
  not a package); reduced widths keep the files small, the unit counts are the real ones;
* Whisper's encoder from the openai-whisper package (``whisper.model``) and from transformers
  (``WhisperForConditionalGeneration``), at reduced sizes, plus one block at 64-dim heads;
* Whisper's log-mel front end from openai-whisper (``whisper.log_mel_spectrogram``).

Weights are written in the original key layouts and containers: a Lightning-style ``.ckpt``
(``state_dict`` with ``model.``/``head.`` keys, optimizer state and metadata objects), CVLface's
``net.``-prefixed safetensors, openai-whisper's ``{'dims', 'model_state_dict'}`` ``.pt`` (float16,
as released) and a HuggingFace ``save_pretrained`` folder. Inputs and outputs go to ``.npz``.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pathlib
import shutil

import numpy as np
import safetensors.torch
import torch
from torch import nn
import transformers
import whisper
import whisper.audio
import whisper.model

UNITS = {"ir_18": (2, 2, 2, 2), "ir_50": (3, 4, 14, 3)}


# ------------------------------------------------------------------------ AdaFace IResNet (ours)

class Subsample(nn.Module):
  """MaxPool2d(1, stride), the shortcut of a unit that keeps its channel count."""

  def __init__(self, stride):
    super().__init__()
    self.pool = nn.MaxPool2d(1, stride)

  def forward(self, x):
    return self.pool(x)


class UnitIR(nn.Module):
  """BN, conv3x3, BN, PReLU, conv3x3 (stride), BN, plus the shortcut; key names as AdaFace's."""

  def __init__(self, cin, cout, stride):
    super().__init__()
    if cin == cout:
      self.shortcut_layer = Subsample(stride)
    else:
      self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))
    self.res_layer = nn.Sequential(
        nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        nn.PReLU(cout), nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))

  def forward(self, x):
    return self.res_layer(x) + self.shortcut_layer(x)


class IResNetReference(nn.Module):
  """AdaFace net.Backbone('ir') at 112x112 with configurable widths."""

  def __init__(self, arch, widths, embedding_dim):
    super().__init__()
    self.input_layer = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
                                     nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
    units, cin = [], widths[0]
    for width, count in zip(widths, UNITS[arch]):
      for index in range(count):
        units.append(UnitIR(cin, width, 2 if index == 0 else 1))
        cin = width
    self.body = nn.Sequential(*units)
    self.output_layer = nn.Sequential(nn.BatchNorm2d(cin), nn.Dropout(0.4), nn.Flatten(),
                                      nn.Linear(cin * 7 * 7, embedding_dim),
                                      nn.BatchNorm1d(embedding_dim, affine=False))

  def forward(self, x):
    x = self.output_layer(self.body(self.input_layer(x)))
    norm = torch.norm(x, 2, 1, True)
    return x / norm, norm


def randomise(module: nn.Module, generator: torch.Generator):
  """Random weights everywhere, including norms, PReLU slopes and running statistics."""
  with torch.no_grad():
    for sub in module.modules():
      if isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d)):
        sub.running_mean.normal_(0.0, 0.2, generator=generator)
        sub.running_var.uniform_(0.5, 1.5, generator=generator)
        sub.num_batches_tracked.fill_(1234)
        if sub.affine:
          sub.weight.uniform_(0.5, 1.5, generator=generator)
          sub.bias.normal_(0.0, 0.2, generator=generator)
      elif isinstance(sub, nn.LayerNorm):
        sub.weight.uniform_(0.5, 1.5, generator=generator)
        sub.bias.normal_(0.0, 0.2, generator=generator)
      elif isinstance(sub, nn.PReLU):
        sub.weight.uniform_(0.0, 0.5, generator=generator)
      elif isinstance(sub, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        fan_in = sub.weight[0].numel()
        sub.weight.normal_(0.0, fan_in ** -0.5, generator=generator)
        if sub.bias is not None:
          sub.bias.normal_(0.0, 0.1, generator=generator)


def calibrate(model: nn.Module, batches) -> None:
  """Running statistics from the data (cumulative averages), as a trained network has them.

  Random running statistics would let activations grow through dozens of residual units; a
  trained network's BN layers normalise them, which keeps the fixtures' outputs of order one.
  """
  norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
  for norm in norms:
    norm.reset_running_stats()
    norm.momentum = None
  model.train()
  with torch.no_grad():
    for batch in batches:
      model(batch)
  for norm in norms:
    norm.momentum = 0.1
    norm.num_batches_tracked.fill_(1234)
  model.eval()


def adaface_to_input(rgb_uint8: np.ndarray) -> torch.Tensor:
  """AdaFace inference.to_input for a batch: RGB -> BGR, ((x / 255) - 0.5) / 0.5, NCHW."""
  bgr = ((rgb_uint8[..., ::-1] / 255.0) - 0.5) / 0.5
  return torch.tensor(bgr.transpose(0, 3, 1, 2).copy()).float()


class ModelCheckpoint:
  """Stands for a Lightning callback class used as a dict key in old checkpoints."""


class AttributeDict(dict):
  """Stands for Lightning's AttributeDict (a dict subclass, pickled with NEWOBJ)."""


def write_adaface(out: pathlib.Path, generator: torch.Generator) -> dict:
  faces = torch.randint(0, 256, (3, 112, 112, 3), generator=generator).numpy().astype(np.uint8)
  arrays = {"faces_rgb": faces}
  # IR-18 depth, reduced widths, AdaFace Lightning .ckpt container.
  calibration = [adaface_to_input(torch.randint(0, 256, (16, 112, 112, 3),
                                                generator=generator).numpy()) for _ in range(2)]
  model = IResNetReference("ir_18", (8, 16, 32, 48), 32)
  randomise(model, generator)
  calibrate(model, calibration)
  with torch.no_grad():
    feature, norm = model(adaface_to_input(faces))
  arrays.update(ir18_feature=feature.numpy(), ir18_norm=norm.numpy())
  head = {"head.kernel": torch.randn(32, 10, generator=generator)}
  state_dict = {f"model.{key}": value.clone() for key, value in model.state_dict().items()}
  state_dict.update(head)
  # A real optimizer state (momentum buffers) for the reader to skip, from a throwaway copy.
  trained = copy.deepcopy(model).train()
  optimizer = torch.optim.SGD(trained.parameters(), lr=0.1, momentum=0.9)
  trained(adaface_to_input(faces))[0].sum().backward()
  optimizer.step()
  hyper = AttributeDict(arch="ir_18", head="adaface", m=0.4, h=0.333, s=64.0, t_alpha=0.01)
  checkpoint = {
      "epoch": 25, "global_step": 123, "pytorch-lightning_version": "1.8.6",
      "state_dict": state_dict, "optimizer_states": [optimizer.state_dict()],
      "lr_schedulers": [{"milestones": {12: 1, 20: 1}, "gamma": 0.1, "last_epoch": 25}],
      "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.97),
                                      "best_model_path": "/tmp/epoch=24.ckpt"}},
      "hparams_name": "kwargs", "hyper_parameters": hyper,
      # Views into shared storages: offsets and strides the reader must honour.
      "extra_views": {"transposed": torch.arange(12.0).reshape(3, 4).t(),
                      "sliced": torch.arange(10, dtype=torch.int64)[3:7]},
  }
  torch.save(checkpoint, out / "adaface_ir18_reduced.ckpt")
  arrays.update(view_transposed=np.arange(12.0).reshape(3, 4).T.astype(np.float32),
                view_sliced=np.arange(3, 7))

  # IR-50 depth, reduced widths, CVLface safetensors (net. prefix); CVLface returns x, unnormed.
  model = IResNetReference("ir_50", (4, 8, 16, 32), 16)
  randomise(model, generator)
  calibrate(model, calibration)
  with torch.no_grad():
    feature, norm = model(adaface_to_input(faces))
  arrays.update(ir50_feature=feature.numpy(), ir50_norm=norm.numpy())
  safetensors.torch.save_file({f"net.{k}": v.contiguous() for k, v in model.state_dict().items()},
                              str(out / "cvlface_ir50_reduced.safetensors"))

  # One unit at AdaFace's real widths: 64 -> 128 channels, stride 2, conv shortcut.
  unit = UnitIR(64, 128, 2)
  randomise(unit, generator)
  x = torch.randn(2, 64, 14, 14, generator=generator)
  calibrate(unit, [torch.randn(8, 64, 14, 14, generator=generator)])
  with torch.no_grad():
    y = unit(x)
  torch.save({f"body.3.{k}": v for k, v in unit.state_dict().items()},
             out / "iresnet_unit_64_128.pt")
  arrays.update(unit_input=x.permute(0, 2, 3, 1).numpy(), unit_output=y.permute(0, 2, 3, 1).numpy())
  np.savez_compressed(out / "adaface_io.npz", **arrays)
  return {"adaface_ir18_reduced.ckpt": "ir_18 widths (8,16,32,48) emb 32",
          "cvlface_ir50_reduced.safetensors": "ir_50 widths (4,8,16,32) emb 16"}


# ------------------------------------------------------------------------ Whisper

def openai_whisper(dims: whisper.model.ModelDimensions, generator, half: bool):
  model = whisper.model.Whisper(dims)
  randomise(model, generator)
  if half:
    model.half()  # released .pt files are float16
  return model


def write_whisper(out: pathlib.Path, generator: torch.Generator) -> dict:
  arrays = {}
  # OpenAI .pt, 80 mels, float16 weights as released; 100-token context = 200 mel frames.
  dims = whisper.model.ModelDimensions(n_mels=80, n_audio_ctx=100, n_audio_state=64,
                                       n_audio_head=4, n_audio_layer=2, n_vocab=64,
                                       n_text_ctx=8, n_text_state=64, n_text_head=4,
                                       n_text_layer=1)
  model = openai_whisper(dims, generator, half=True)
  torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()},
             out / "whisper_reduced.pt")
  encoder = model.encoder.float()  # the fp16 values, computed in fp32
  mel = torch.randn(2, 80, 200, generator=generator) * 0.5
  with torch.no_grad():
    arrays.update(openai_mel=mel.transpose(1, 2).numpy(),
                  openai_output=encoder(mel).numpy())
    # Shorter window: the same weights with the position table cut to 40 tokens.
    short = whisper.model.AudioEncoder(80, 40, 64, 4, 2)
    short.load_state_dict({k: (v[:40] if k == "positional_embedding" else v)
                           for k, v in encoder.state_dict().items()})
    arrays.update(openai_short_output=short(mel[:, :, :80]).numpy())

  # OpenAI .pt with 128 mels (the large-v3 front), float32.
  dims128 = dataclasses.replace(dims, n_mels=128, n_audio_ctx=50, n_audio_state=32,
                                n_audio_head=2, n_audio_layer=1, n_text_state=32,
                                n_text_head=2)
  model = openai_whisper(dims128, generator, half=False)
  torch.save({"dims": dataclasses.asdict(dims128), "model_state_dict": model.state_dict()},
             out / "whisper_reduced_128mel.pt")
  mel = torch.randn(1, 128, 100, generator=generator) * 0.5
  with torch.no_grad():
    arrays.update(mel128=mel.transpose(1, 2).numpy(), mel128_output=model.encoder(mel).numpy())

  # HuggingFace WhisperForConditionalGeneration, save_pretrained (safetensors + config.json).
  config = transformers.WhisperConfig(
      d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=256,
      decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=256, num_mel_bins=80,
      max_source_positions=100, max_target_positions=8, vocab_size=64, pad_token_id=0,
      bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
  hf = transformers.WhisperForConditionalGeneration(config)
  randomise(hf, generator)
  hf.eval()
  folder = out / "whisper_reduced_hf"
  shutil.rmtree(folder, ignore_errors=True)
  hf.save_pretrained(folder, safe_serialization=True)
  for extra in folder.iterdir():
    if extra.name not in ("model.safetensors", "config.json"):
      extra.unlink()
  mel = torch.randn(2, 80, 200, generator=generator) * 0.5
  with torch.no_grad():
    hidden = hf.model.encoder(input_features=mel).last_hidden_state
  arrays.update(hf_mel=mel.transpose(1, 2).numpy(), hf_output=hidden.numpy())

  # One encoder block with Whisper's real 64-dim heads (width 128, 2 heads), OpenAI keys.
  block = whisper.model.ResidualAttentionBlock(128, 2)
  randomise(block, generator)
  x = torch.randn(2, 30, 128, generator=generator)
  with torch.no_grad():
    y = block(x)
  torch.save({f"encoder.blocks.0.{k}": v for k, v in block.state_dict().items()},
             out / "whisper_block_128x2.pt")
  arrays.update(block_input=x.numpy(), block_output=y.numpy())

  # Rows of the released models' position tables (tiny and large widths).
  rows = np.array([0, 1, 2, 749, 1498, 1499])
  for width in (384, 1280):
    arrays[f"sinusoids_{width}_rows"] = rows
    arrays[f"sinusoids_{width}"] = whisper.model.sinusoids(1500, width).numpy()[rows]
  np.savez_compressed(out / "whisper_io.npz", **arrays)
  return {"whisper_reduced.pt": dataclasses.asdict(dims),
          "whisper_reduced_128mel.pt": dataclasses.asdict(dims128),
          "whisper_reduced_hf": config.to_diff_dict()}


def write_log_mel(out: pathlib.Path, generator: torch.Generator) -> dict:
  """Whisper's own front end on a speech-like synthetic signal (3 s at 16 kHz)."""
  rate = whisper.audio.SAMPLE_RATE
  t = np.arange(3 * rate) / rate
  pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
  phase = 2 * np.pi * np.cumsum(pitch) / rate
  envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
  voiced = sum(np.sin(k * phase) / k for k in range(1, 25)) * envelope
  noise = torch.randn(t.size, generator=generator).numpy() * 0.02
  audio = (0.3 * voiced / np.abs(voiced).max() + noise).astype(np.float32)
  audio[rate:rate + rate // 4] = 0.0  # a silent gap, where the 1e-10 floor and max-8 act
  arrays = {"audio": audio}
  for n_mels in (80, 128):
    arrays[f"mel{n_mels}"] = whisper.audio.log_mel_spectrogram(audio, n_mels=n_mels).numpy().T
  arrays["mel80_padded"] = whisper.audio.log_mel_spectrogram(audio, 80, padding=8000).numpy().T
  np.savez_compressed(out / "whisper_logmel.npz", **arrays)
  return {"whisper_logmel.npz": "3 s synthetic voiced signal + noise, 80/128 mels"}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="tests/fixtures/inconsistency", type=pathlib.Path)
  parser.add_argument("--seed", default=0, type=int)
  args = parser.parse_args()
  args.out.mkdir(parents=True, exist_ok=True)
  generator = torch.Generator().manual_seed(args.seed)
  torch.manual_seed(args.seed)
  manifest = {"torch": torch.__version__, "transformers": transformers.__version__,
              "openai-whisper": whisper.__version__, "seed": args.seed}
  manifest.update(write_adaface(args.out, generator))
  manifest.update(write_whisper(args.out, generator))
  manifest.update(write_log_mel(args.out, generator))
  (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, default=str) + "\n")
  total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
  print(f"wrote {args.out} ({total / 2**20:.2f} MiB)")


if __name__ == "__main__":
  main()
