"""MTCNN in JAX/Flax, reproducing the `mtcnn` 1.0.0 package (TensorFlow/Keras) detection by
detection, with the weights that package ships.

The package (`mtcnn.MTCNN(stages="face_and_landmarks_detection").detect_faces`) does, for a
batch of equally sized RGB frames (facts read from its source, re-implemented here):

1. Pixels to (x - 127.5) / 128. A pyramid of scales 0.6 * f**k for k < round(log(min side /
   12) / -log(f) - 1) (f: the scale factor; 0.6 = 12 / min_face_size 20), each level resized
   with TensorFlow's AREA method to int(side * scale) pixels.
2. P-Net on every level: each output cell (x, y) whose face probability exceeds the P-Net
   threshold proposes the window (2x + 1, 2y + 1) .. (2x + 12, 2y + 12) with its corners moved
   by the offsets times 11 (the window's span), divided by the scale; proposals sorted by
   score (descending), "union" NMS at 0.5 per level, then across levels at 0.7, then squared
   about their centre.
3. R-Net on 24x24 bilinear crops (tf.image.crop_and_resize; samples outside the picture are 0)
   of the squared boxes: its score replaces the box's, its offsets move each side by offset *
   (side + 1); boxes above the R-Net threshold, NMS 0.7 "union", squared.
4. O-Net on 48x48 crops: five landmarks (bbox origin - 1 + fraction * (side + 1), stored in
   float32), score, offsets; boxes above the O-Net threshold, NMS 0.7 "min" (intersection over
   the smaller box).
5. Boxes clipped to [0, width - 1] x [0, height - 1]; landmarks are not clipped.

Its NMS is the matrix form: a box is dropped when ANY higher-scored box of the same image
overlaps it more than the threshold (even one that was itself dropped); sorts are
`argsort(scores)` reversed, which this module keeps so that ties fall the same way.

P-Net's first convolution and the max-pool after it are computed as one stride-2 convolution
over the pool's four phases (:class:`PhasedConv`; the same sums, 4x faster on the CPU).

What runs where: the networks, the pyramid's resizing and the crops are jitted JAX (P-Net over
all levels in one call per batch of frames; R-/O-Net over all candidates of the batch in one
call, the frame and candidate counts padded to powers of two so that a video compiles a
handful of shapes once); the candidates' bilinear crops (scattered reads, which XLA does slowly
on CPU), thresholds, NMS and box arithmetic are NumPy, in the package's float32 / float64.

The Flax modules are pure (no I/O); :func:`load_package_params` reads the package's shipped
weight files (joblib + lz4, under mtcnn/assets/weights/) without importing TensorFlow.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import pathlib
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

PNET_CELL = 12
PNET_STRIDE = 2
MIN_PYRAMID_SIDE = 12
MIN_CANDIDATE_BUCKET = 16


class PReLU(nn.Module):
  """max(x, 0) + alpha * min(x, 0), one alpha per channel (Keras PReLU, shared over H, W)."""
  features: int

  @nn.compact
  def __call__(self, x):
    alpha = self.param("alpha", nn.initializers.constant(0.25), (self.features,))
    return jnp.maximum(x, 0) + alpha * jnp.minimum(x, 0)


def _conv(features: int, size: int, name: str) -> nn.Conv:
  return nn.Conv(features, (size, size), padding="VALID", name=name)


def _flatten_width_major(x):
  """Keras' Permute((2, 1, 3)) then Flatten: [B, H, W, C] -> [B, W * H * C]."""
  return jnp.transpose(x, (0, 2, 1, 3)).reshape(x.shape[0], -1)


# The four positions (dy, dx) of a 2x2 max-pool window, in the order of PhasedConv's phases.
_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


class PhasedConv(nn.Module):
  """A 3x3 VALID convolution evaluated as its four 2x2-pool phases: [B, H, W, C] ->
  ([B, ceil((H - 2) / 2), ceil((W - 2) / 2), 4, features], inside [h, w, 4]), phase (dy, dx)
  of output cell (i, j) being the convolution at (2i + dy, 2j + dx); `inside` is False where
  that position lies past the convolution's edge (SAME max-pooling leaves those out; mask them
  after any activation). Its variables are nn.Conv's (kernel [3, 3, C, F], bias).

  Why: P-Net's first layer has 3 input and 10 output channels, which XLA's CPU convolution
  runs several times below its speed on wider layers; one 4x4 stride-2 convolution with 40
  outputs (the 3x3 kernel placed at each phase's offset, zeros elsewhere) computes the same
  sums, and the 2x2 pool becomes a max over the phase axis (measured on 8 frames at 384x216:
  conv1 + PReLU + pool 92 ms -> 22 ms of CPU, identical outputs).
  """
  features: int

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (3, 3, channels, self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    height, width = x.shape[1] - 2, x.shape[2] - 2          # the 3x3 VALID output
    # Pad to an even output so that every pool window is whole; the cells this invents are
    # masked below.
    x = jnp.pad(x, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)))
    phased = jnp.zeros((4, 4, channels, 4, self.features), kernel.dtype)
    for phase, (dy, dx) in enumerate(_PHASES):
      phased = phased.at[dy:dy + 3, dx:dx + 3, :, phase, :].set(kernel)
    y = jax.lax.conv_general_dilated(
        x, phased.reshape(4, 4, channels, 4 * self.features), (2, 2), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape(y.shape[:3] + (4, self.features)) + bias
    rows = 2 * jnp.arange(y.shape[1])[:, None] + jnp.asarray([dy for dy, _ in _PHASES])
    cols = 2 * jnp.arange(y.shape[2])[:, None] + jnp.asarray([dx for _, dx in _PHASES])
    inside = (rows[:, None, :] < height) & (cols[None, :, :] < width)   # [h, w, 4]
    return y, inside


class PNet(nn.Module):
  """Proposal network: any image size -> per-cell box offsets [.., 4] and face probability."""

  @nn.compact
  def __call__(self, x):
    # conv1 -> PReLU -> 2x2 max-pool (SAME), the pool taken over PhasedConv's phases.
    phases, inside = PhasedConv(10, name="conv1")(x)
    x = jnp.where(inside[..., None], PReLU(10, name="prelu1")(phases), -jnp.inf).max(axis=3)
    x = PReLU(16, name="prelu2")(_conv(16, 3, "conv2")(x))
    x = PReLU(32, name="prelu3")(_conv(32, 3, "conv3")(x))
    offsets = _conv(4, 1, "conv4_1")(x)
    probabilities = nn.softmax(_conv(2, 1, "conv4_2")(x), axis=-1)
    return offsets, probabilities[..., 1]


class RNet(nn.Module):
  """Refinement network: 24x24 crops -> box offsets [N, 4] and face probability [N]."""

  @nn.compact
  def __call__(self, x):
    x = PReLU(28, name="prelu1")(_conv(28, 3, "conv1")(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
    x = PReLU(48, name="prelu2")(_conv(48, 3, "conv2")(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding="VALID")
    x = PReLU(64, name="prelu3")(_conv(64, 2, "conv3")(x))
    x = PReLU(128, name="prelu4")(nn.Dense(128, name="fc4")(_flatten_width_major(x)))
    offsets = nn.Dense(4, name="fc5_1")(x)
    probabilities = nn.softmax(nn.Dense(2, name="fc5_2")(x), axis=-1)
    return offsets, probabilities[..., 1]


class ONet(nn.Module):
  """Output network: 48x48 crops -> box offsets [N, 4], landmarks [N, 10] (x1..x5, y1..y5)
  as fractions of the box, face probability [N]."""

  @nn.compact
  def __call__(self, x):
    x = PReLU(32, name="prelu1")(_conv(32, 3, "conv1")(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
    x = PReLU(64, name="prelu2")(_conv(64, 3, "conv2")(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding="VALID")
    x = PReLU(64, name="prelu3")(_conv(64, 3, "conv3")(x))
    x = nn.max_pool(x, (2, 2), (2, 2), padding="SAME")
    x = PReLU(128, name="prelu4")(_conv(128, 2, "conv4")(x))
    x = PReLU(256, name="prelu5")(nn.Dense(256, name="fc5")(_flatten_width_major(x)))
    offsets = nn.Dense(4, name="fc6_1")(x)
    landmarks = nn.Dense(10, name="fc6_2")(x)
    probabilities = nn.softmax(nn.Dense(2, name="fc6_3")(x), axis=-1)
    return offsets, landmarks, probabilities[..., 1]


# The order of each network's layers in the package's weight lists (Keras get_weights order:
# kernel and bias of each conv / dense, alpha of each PReLU, as the layers were built).
_LAYERS = {
    "pnet": ("conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "conv4_1", "conv4_2"),
    "rnet": ("conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "fc4", "prelu4",
             "fc5_1", "fc5_2"),
    "onet": ("conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "conv4", "prelu4",
             "fc5", "prelu5", "fc6_1", "fc6_2", "fc6_3"),
}


def package_weights_dir() -> pathlib.Path:
  """mtcnn/assets/weights of the installed package (found without importing it: its
  __init__ imports TensorFlow)."""
  spec = importlib.util.find_spec("mtcnn")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("the `mtcnn` package (1.0.0) is not installed; its weight files"
                            " are what the JAX MTCNN loads (pip install mtcnn==1.0.0)")
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"


def params_from_weights(network: str, weights: Sequence[np.ndarray]) -> dict:
  """Flax params of `network` from the package's Keras weight list."""
  weights = list(weights)
  params = {}
  for layer in _LAYERS[network]:
    if layer.startswith("prelu"):
      params[layer] = {"alpha": np.asarray(weights.pop(0), np.float32).reshape(-1)}
    else:
      kernel, bias = weights.pop(0), weights.pop(0)
      params[layer] = {"kernel": np.asarray(kernel, np.float32),
                       "bias": np.asarray(bias, np.float32)}
  if weights:
    raise ValueError(f"{network}: {len(weights)} weight arrays left over")
  return {"params": params}


def load_package_params(directory: Optional[pathlib.Path] = None) -> dict:
  """{"pnet": params, "rnet": ..., "onet": ...} from the package's shipped .lz4 files."""
  import joblib
  directory = pathlib.Path(directory) if directory else package_weights_dir()
  return {name: params_from_weights(name, joblib.load(directory / f"{name}.lz4"))
          for name in _LAYERS}


# ----------------------------------------------------------------------- image operations

def pyramid_scales(width: int, height: int, min_face_size: int, scale_factor: float
                   ) -> np.ndarray:
  """The package's pyramid (same float64 arithmetic, so the same level sizes)."""
  smallest = min(width, height)
  count = round(-((np.log(smallest / MIN_PYRAMID_SIDE) / np.log(scale_factor)) + 1))
  return (MIN_PYRAMID_SIDE / min_face_size) * scale_factor ** np.arange(count)


def level_size(height: int, width: int, scale: float) -> tuple:
  """Pixels of one pyramid level: the package asks TensorFlow for `shape * scale`, which
  truncates to integers."""
  size = np.asarray([height, width]) * scale
  return int(size[0]), int(size[1])


def area_taps(in_size: int, out_size: int) -> tuple:
  """(indices [out, K], weights [out, K]) of TensorFlow's AREA resize along one axis.

  Output pixel i averages the input span [i * s, (i + 1) * s), s = in / out, each input pixel
  weighted by its overlap with the span (float32, as TensorFlow), normalised by 1 / s.
  """
  scale = np.float32(in_size) / np.float32(out_size)
  starts = np.arange(out_size, dtype=np.float32) * scale
  ends = np.arange(1, out_size + 1, dtype=np.float32) * scale
  first = np.floor(starts).astype(np.int64)
  taps = int((np.ceil(ends).astype(np.int64) - first).max())
  index = first[:, None] + np.arange(taps)[None]
  overlap = (np.minimum(index + 1, ends[:, None]).astype(np.float32) -
             np.maximum(index, starts[:, None]).astype(np.float32))
  overlap = np.where(index < np.ceil(ends)[:, None], np.maximum(overlap, 0), 0)
  weights = (overlap / scale).astype(np.float32)
  return np.minimum(index, in_size - 1).astype(np.int32), weights


def _resize_axis(images, out_size: int, axis: int):
  """AREA resize along one axis: a weighted sum of whole rows (or columns) taken by index,
  which XLA copies as contiguous blocks (a per-pixel gather is several times slower)."""
  index, weights = area_taps(images.shape[axis], out_size)
  shape = [1] * images.ndim
  shape[axis] = out_size
  total = 0
  for tap in range(index.shape[1]):
    total = total + (jnp.take(images, jnp.asarray(index[:, tap]), axis=axis) *
                     jnp.asarray(weights[:, tap]).reshape(shape))
  return total


def area_resize(images, out_height: int, out_width: int):
  """TensorFlow's AREA resize of [B, H, W, C] float32 images (separable)."""
  rows = _resize_axis(images, out_height, 1)
  columns = _resize_axis(jnp.transpose(rows, (0, 2, 1, 3)), out_width, 1)
  return jnp.transpose(columns, (0, 2, 1, 3))


def crop_and_resize(images: np.ndarray, boxes: np.ndarray, image_index: np.ndarray,
                    size: int) -> np.ndarray:
  """tf.image.crop_and_resize (bilinear, extrapolation value 0) in float32 NumPy.

  images [B, H, W, C] float32; boxes [N, 4] float32 (y1, x1, y2, x2) as fractions of the
  picture; image_index [N] -> [N, size, size, C]. Sample i of a box lies at
  y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (size - 1); rows or columns outside the picture
  are 0. (NumPy's fancy indexing does these scattered reads much faster than XLA on CPU.)
  """
  height, width = images.shape[1], images.shape[2]
  y1, x1, y2, x2 = (boxes[:, k:k + 1] for k in range(4))
  steps = np.arange(size, dtype=np.float32)[None]
  in_y = y1 * np.float32(height - 1) + steps * ((y2 - y1) * np.float32(height - 1) /
                                                np.float32(size - 1))
  in_x = x1 * np.float32(width - 1) + steps * ((x2 - x1) * np.float32(width - 1) /
                                               np.float32(size - 1))
  valid_y = (in_y >= 0) & (in_y <= height - 1)
  valid_x = (in_x >= 0) & (in_x <= width - 1)
  top, left = np.floor(in_y), np.floor(in_x)
  y_lerp = (in_y - top)[:, :, None, None]
  x_lerp = (in_x - left)[:, None, :, None]
  top = np.clip(top, 0, height - 1).astype(np.intp)
  left = np.clip(left, 0, width - 1).astype(np.intp)
  bottom = np.clip(np.ceil(in_y), 0, height - 1).astype(np.intp)
  right = np.clip(np.ceil(in_x), 0, width - 1).astype(np.intp)
  b = image_index[:, None, None]

  def pick(ys, xs):
    return images[b, ys[:, :, None], xs[:, None, :]]

  top_left, top_right = pick(top, left), pick(top, right)
  bottom_left, bottom_right = pick(bottom, left), pick(bottom, right)
  upper = top_left + (top_right - top_left) * x_lerp
  lower = bottom_left + (bottom_right - bottom_left) * x_lerp
  crops = upper + (lower - upper) * y_lerp
  valid = (valid_y[:, :, None] & valid_x[:, None, :])[..., None]
  return np.where(valid, crops, np.float32(0)).astype(np.float32)


# ------------------------------------------------------------------ box arithmetic (NumPy)
# Rows: [image, x1, y1, x2, y2, score] (+ 10 landmark columns after O-Net), float64.

def _descending(rows: np.ndarray, column: int = 5) -> np.ndarray:
  return rows[np.argsort(rows[:, column])[::-1]]


def _overlaps(boxes: np.ndarray, method: str) -> np.ndarray:
  area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  lo = np.maximum(boxes[None, :, :2], boxes[:, None, :2])
  hi = np.minimum(boxes[None, :, 2:], boxes[:, None, 2:])
  inter = np.prod(np.maximum(hi - lo, 0), axis=-1)
  with np.errstate(divide="ignore", invalid="ignore"):
    if method == "union":
      return inter / (area[:, None] + area[None, :] - inter)
    return inter / np.minimum(area[:, None], area[None, :])


def nms(rows: np.ndarray, threshold: float, method: str = "union", sort: bool = True
        ) -> np.ndarray:
  """Per image (ascending ids): drop each box that any earlier box overlaps > threshold."""
  if sort:
    rows = _descending(rows)
  kept = []
  for image in np.unique(rows[:, 0]):
    group = rows[rows[:, 0] == image]
    overlap = _overlaps(group[:, 1:5], method)
    suppressed = np.triu(overlap > threshold, k=1).any(axis=0)
    kept.append(group[~suppressed])
  return np.concatenate(kept) if kept else np.zeros((0, rows.shape[1]))


def square(rows: np.ndarray) -> np.ndarray:
  """Boxes squared to their longer side about their centre."""
  rows = rows.copy()
  width, height = rows[:, 3] - rows[:, 1], rows[:, 4] - rows[:, 2]
  side = np.maximum(width, height)
  rows[:, 1] += width * 0.5 - side * 0.5
  rows[:, 2] += height * 0.5 - side * 0.5
  rows[:, 3] = rows[:, 1] + side
  rows[:, 4] = rows[:, 2] + side
  return rows


def refine(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
  """Moves each side by offset * (side length + 1)."""
  rows = rows.copy()
  width = rows[:, 3] - rows[:, 1] + 1
  height = rows[:, 4] - rows[:, 2] + 1
  rows[:, 1:5] += offsets * np.stack([width, height, width, height], axis=-1)
  return rows


def proposals(offsets: np.ndarray, scores: np.ndarray, threshold: float, scale: float
              ) -> np.ndarray:
  """P-Net cells above threshold -> rows in full-image pixels, sorted by score."""
  image, y, x = np.nonzero(scores > threshold)
  dx1, dy1, dx2, dy2 = offsets[image, y, x].T.astype(np.float64)   # as the package: float64
  # The package's cell spans (2x + 1 .. 2x + 12): 11 px, the unit of the offsets.
  left, top = x * PNET_STRIDE + 1, y * PNET_STRIDE + 1
  right, bottom = x * PNET_STRIDE + PNET_CELL, y * PNET_STRIDE + PNET_CELL
  span = PNET_CELL - 1
  rows = np.stack([image, left + dx1 * span, top + dy1 * span, right + dx2 * span,
                   bottom + dy2 * span, scores[image, y, x]], axis=0).T.astype(np.float64)
  rows = _descending(rows)
  rows[:, 1:5] /= scale
  return rows


def _bucket(count: int) -> int:
  return max(MIN_CANDIDATE_BUCKET, 1 << int(np.ceil(np.log2(max(count, 1)))))


def padded_count(count: int, batch_size: int) -> int:
  """Frames of one P-Net call: `count` padded to the next power of two, at most the batch
  size. A video compiles at most log2(batch size) + 1 pyramid shapes, and a keyframe tracker's
  single-frame re-detection costs one frame of P-Net, not a batch of zeros (padding every call
  to the batch size made it 8 frames' work)."""
  return min(batch_size, 1 << int(np.ceil(np.log2(max(count, 1)))))


@dataclasses.dataclass(frozen=True)
class MtcnnConfig:
  """The package's detect_faces keywords (its defaults except the pyramid factor, where the
  authors used 0.6; see data.facetrack.detect.MtcnnSettings)."""
  min_face_size: int = 20
  scale_factor: float = 0.709
  threshold_pnet: float = 0.6
  threshold_rnet: float = 0.7
  threshold_onet: float = 0.8
  nms_pnet_level: float = 0.5
  nms_pnet: float = 0.7
  nms_rnet: float = 0.7
  nms_onet: float = 0.7


class Mtcnn:
  """The three networks with the package's procedure; frames of one size per call.

  `detect(frames)` -> per frame float64 [n, 15]: x1, y1, x2, y2, score, landmark x1..x5,
  landmark y1..y5 (the package's `output_type="numpy"` rows without the image column and with
  corners instead of width/height). Boxes clipped to the frame as the package's default.
  """

  def __init__(self, params: Optional[dict] = None, batch_size: int = 8):
    params = params or load_package_params()
    self.params = jax.tree_util.tree_map(jnp.asarray, params)
    self.batch_size = batch_size
    self._pnet, self._rnet, self._onet = PNet(), RNet(), ONet()
    self._pyramid = jax.jit(self._pyramid_fn, static_argnames=("sizes",))
    self._rnet_apply = jax.jit(self._rnet.apply)
    self._onet_apply = jax.jit(self._onet.apply)

  # --- jitted pieces
  def _pyramid_fn(self, params, frames, sizes):
    images = (frames.astype(jnp.float32) - 127.5) / 128
    out = []
    for height, width in sizes:
      offsets, scores = self._pnet.apply(params, area_resize(images, height, width))
      out.append((offsets, scores))
    return out

  @staticmethod
  def _crops(images: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Crops of `rows`' boxes, padded with zeros to a bucketed count (few compiled shapes)."""
    height, width = images.shape[1:3]
    fractions = (rows[:, [2, 1, 4, 3]] /
                 np.asarray([[height, width, height, width]])).astype(np.float32)
    crops = np.zeros((_bucket(len(rows)), size, size, 3), np.float32)
    crops[:len(rows)] = crop_and_resize(images, fractions, rows[:, 0].astype(np.intp), size)
    return crops

  # --- procedure
  def detect(self, frames, config: MtcnnConfig = MtcnnConfig()) -> list:
    frames = list(frames)
    out = []
    for start in range(0, len(frames), self.batch_size):
      out.extend(self._detect_batch(frames[start:start + self.batch_size], config))
    return out

  def _detect_batch(self, frames: list, c: MtcnnConfig) -> list:
    count = len(frames)
    shape = frames[0].shape[:2]
    if any(f.shape[:2] != shape for f in frames):
      raise ValueError("Mtcnn.detect: frames of one call must share one size")
    batch = np.zeros((padded_count(count, self.batch_size),) + frames[0].shape, np.uint8)
    batch[:count] = np.stack(frames)
    images = (batch[:count].astype(np.float32) - np.float32(127.5)) / np.float32(128)
    height, width = shape
    scales = pyramid_scales(width, height, c.min_face_size, c.scale_factor)
    sizes = tuple(level_size(height, width, s) for s in scales)
    empty = [np.zeros((0, 15))] * count
    if not sizes or min(min(s) for s in sizes) < PNET_CELL:
      sizes = tuple(s for s in sizes if min(s) >= PNET_CELL)
      scales = scales[:len(sizes)]
      if not sizes:
        return empty
    levels = jax.device_get(self._pyramid(self.params["pnet"], batch, sizes=sizes))
    rows = []
    for (offsets, scores), scale in zip(levels, scales):
      found = proposals(np.asarray(offsets[:count]), np.asarray(scores[:count]),
                        c.threshold_pnet, scale)
      rows.append(nms(found, c.nms_pnet_level, "union", sort=False))
    rows = square(nms(np.concatenate(rows), c.nms_pnet, "union"))
    if not len(rows):
      return empty
    # R-Net
    offsets, scores = jax.device_get(self._rnet_apply(self.params["rnet"],
                                                      self._crops(images, rows, 24)))
    rows[:, 5] = scores[:len(rows)]
    rows = refine(rows, offsets[:len(rows)])
    rows = rows[rows[:, 5] > c.threshold_rnet]
    rows = square(nms(rows, c.nms_rnet, "union"))
    if not len(rows):
      return empty
    # O-Net
    offsets, landmarks, scores = jax.device_get(
        self._onet_apply(self.params["onet"], self._crops(images, rows, 48)))
    landmarks = np.array(landmarks[:len(rows)], np.float32)
    width_1 = rows[:, 3:4] - rows[:, 1:2] + 1
    height_1 = rows[:, 4:5] - rows[:, 2:3] + 1
    landmarks[:, :5] = width_1 * landmarks[:, :5] + rows[:, 1:2] - 1
    landmarks[:, 5:] = height_1 * landmarks[:, 5:] + rows[:, 2:3] - 1
    rows[:, 5] = scores[:len(rows)]
    rows = np.concatenate([refine(rows, offsets[:len(rows)]), landmarks], axis=1)
    rows = rows[rows[:, 5] > c.threshold_onet]
    rows = nms(rows, c.nms_onet, "min")
    rows[:, [1, 3]] = np.clip(rows[:, [1, 3]], 0, width - 1)
    rows[:, [2, 4]] = np.clip(rows[:, [2, 4]], 0, height - 1)
    return [rows[rows[:, 0] == i, 1:] for i in range(count)]


@functools.lru_cache(maxsize=None)
def shared(batch_size: int = 8) -> Mtcnn:
  """One Mtcnn per batch size in this process (weights loaded and functions compiled once)."""
  return Mtcnn(batch_size=batch_size)
