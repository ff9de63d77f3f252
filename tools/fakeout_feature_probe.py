"""Does a FakeOut backbone carry a fake/real signal? Probes on its frozen features.

  python tools/fakeout_feature_probe.py --records demo_out/records \
      --checkpoint demo_out/fakeout_pretrain [--config CONFIG] [--steps 1000] [--json OUT]

The companion of tools/fakeout_fit_check.py (which shows the train step can fit a batch): for a
fine-tuning whose loss stays at ln 2, it tells a backbone without a signal from a head that
cannot find one. The backbone (a pretrain or finetune workdir, a converted folder or a pickle;
not random weights, whose initial batch statistics blow up in inference mode) embeds the
evaluation clips of the config's train and val record sets (N clips per track, in inference
mode), and three probes read them:

* ``av_disagreement_auc``: minus the cosine of each clip's video and audio embeddings in MMV's
  joint space, mean over the track's clips (FakeOut's Fig. 4 quantity; no training);
  ``av_disagreement_centered_auc`` the same after subtracting the track's mean embedding of
  each modality from its clips (the score ``pretrain.center_within_track`` trains);
* ``logistic``: scikit-learn's logistic regression on the standardised classifier inputs
  (concat(vid_repr, aud_repr)) of the training clips, balanced classes; AUC of the clip
  probabilities' mean per track;
* ``head``: the config's FakeOut head trained on the same frozen inputs as fine-tuning trains
  it (Adam at the config's learning rate, the config's batch size, balanced sampling), once on
  the raw features and once with each example's features normalised first (parameter-free
  layer norm): its loss, and its train and val AUC, at a few steps.

Every AUC is per track (label: the track's video). Choose on the val identities only.
"""
import argparse
import json
import os
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn import linear_model, metrics, preprocessing

from data import protocols
from fakeout_jax import configs, input_pipeline, models, state as state_lib

REPORT_STEPS = (100, 300, 1000)


def clip_features(config, variables, files) -> dict:
  """Per track: classifier inputs [N, D], joint-space embeddings [N, E] x 2, label."""
  model = models.create_model(config.model)

  @jax.jit
  def embed(video, audio):
    out = state_lib.forward(model, variables, {"video": video, "audio": audio}, train=False)
    return (jnp.concatenate([out["vid_repr"], out["aud_repr"]], axis=-1),
            out["vid_embd"]["toaud"], out["aud_embd"]["tovid"])

  features, video_embeddings, audio_embeddings, labels, video_ids = [], [], [], [], []
  ds = input_pipeline.eval_dataset(files, config.input, batch_size=config.eval.batch_size)
  for batch in ds.as_numpy_iterator():
    keep = batch["mask"].astype(bool)
    b, n = batch["video"].shape[:2]
    flat = lambda x: x.reshape((b * n,) + x.shape[2:])
    outs = embed(flat(batch["video"]), flat(batch["audio"]))
    for store, value in zip((features, video_embeddings, audio_embeddings), outs):
      store.append(np.asarray(value).reshape(b, n, -1)[keep])
    labels.append(batch["label"][keep])
    video_ids.extend(v.decode() for v in batch["video_id"][keep])
  return {"features": np.concatenate(features), "video": np.concatenate(video_embeddings),
          "audio": np.concatenate(audio_embeddings), "label": np.concatenate(labels),
          "video_id": video_ids}


def track_auc(labels, clip_scores) -> float:
  return round(float(metrics.roc_auc_score(labels, np.asarray(clip_scores).mean(axis=1))), 4)


def av_cosines(split: dict, center: bool = False) -> np.ndarray:
  """[tracks, clips] cosine of each clip's video and audio embeddings."""
  v, a = split["video"], split["audio"]
  if center:  # what pretrain.center_within_track trains: each clip's deviation from its track
    v, a = v - v.mean(axis=1, keepdims=True), a - a.mean(axis=1, keepdims=True)
  return (v * a).sum(-1) / (np.linalg.norm(v, axis=-1) * np.linalg.norm(a, axis=-1) + 1e-8)


def av_disagreement(split: dict, center: bool = False) -> float:
  return track_auc(split["label"], -av_cosines(split, center))


def disagreement_by_kind(split: dict, kinds: dict) -> dict:
  """AUC of each synthetic kind's fake tracks against all real tracks, plain and centred."""
  names = [kinds.get(v, "?") for v in split["video_id"]]
  fake_kinds = sorted({k for k, y in zip(names, split["label"]) if y == 1})
  out = {kind: {} for kind in fake_kinds}
  for key, center in (("plain", False), ("centered", True)):
    scores = -av_cosines(split, center).mean(axis=1)
    rows = [{"label": int(y), "score": float(score), "category": name}
            for y, score, name in zip(split["label"], scores, names)]
    for kind, result in protocols.per_category_metrics(rows, fake_kinds).items():
      out[kind][key] = round(float(result.auc), 4)
  return out


def logistic_probe(train: dict, val: dict) -> dict:
  _, clips, dim = train["features"].shape
  scaler = preprocessing.StandardScaler().fit(train["features"].reshape(-1, dim))
  fit = linear_model.LogisticRegression(C=0.1, max_iter=5000, class_weight="balanced").fit(
      scaler.transform(train["features"].reshape(-1, dim)), np.repeat(train["label"], clips))

  def scores(split):
    x = scaler.transform(split["features"].reshape(-1, dim))
    return fit.decision_function(x).reshape(len(split["label"]), -1)
  return {"train_auc": track_auc(train["label"], scores(train)),
          "val_auc": track_auc(val["label"], scores(val))}


class NormalisedHead(nn.Module):
  """The FakeOut head, on raw features or after a parameter-free layer norm."""
  head: nn.Module
  normalise: bool

  @nn.compact
  def __call__(self, x):
    if self.normalise:
      x = nn.LayerNorm(use_bias=False, use_scale=False)(x)
    return self.head(x)


def head_probe(config, train: dict, val: dict, steps: int, normalise: bool) -> dict:
  dim = train["features"].shape[-1]
  x = jnp.asarray(train["features"].reshape(-1, dim))
  y = jnp.asarray(np.repeat(train["label"], train["features"].shape[1]))
  head = NormalisedHead(models.FakeOutHead(tuple(config.model.head.hidden),
                                           config.model.head.num_classes,
                                           config.model.head.activation), normalise)
  params = head.init(jax.random.PRNGKey(config.train.seed), x[:1])
  optimizer = optax.adam(config.train.learning_rate, config.train.adam_b1, config.train.adam_b2,
                         config.train.adam_eps)
  opt_state = optimizer.init(params)
  # Balanced sampling, as fine-tuning's oversampling: each class drawn with probability 1/2.
  weights = jnp.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) / len(y)

  @jax.jit
  def step(params, opt_state, key):
    index = jax.random.choice(key, len(y), (config.train.batch_size,), p=weights)

    def loss_fn(p):
      logits = head.apply(p, x[index])
      return optax.softmax_cross_entropy_with_integer_labels(logits, y[index]).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  def scores(split):
    logits = head.apply(params, jnp.asarray(split["features"].reshape(-1, dim)))
    return np.asarray(jax.nn.softmax(logits)[:, 1]).reshape(len(split["label"]), -1)

  key, losses, report = jax.random.PRNGKey(1), [], {}
  for i in range(1, steps + 1):
    key, sub = jax.random.split(key)
    params, opt_state, loss = step(params, opt_state, sub)
    losses.append(float(loss))
    if i in REPORT_STEPS or i == steps:
      report[str(i)] = {"loss_last_50": round(float(np.mean(losses[-50:])), 4),
                        "train_auc": track_auc(train["label"], scores(train)),
                        "val_auc": track_auc(val["label"], scores(val))}
  return report


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--records", required=True, help="root of the record sets (data.root)")
  parser.add_argument("--checkpoint", required=True,
                      help="pretrain or finetune workdir, converted folder or pickle")
  parser.add_argument("--config", default="fakeout_jax/configs/synthetic_tiny.py")
  parser.add_argument("--steps", type=int, default=1000, help="Adam steps of the head probes")
  parser.add_argument("--json", help="also write the result here")
  parser.add_argument("--ground-truth", help="data.synth's synthetic_ground_truth.csv: adds "
                      "the val disagreement AUCs per synthetic kind")
  args = parser.parse_args(argv)
  config = configs.load(args.config)
  if not config.model.compute_embeddings or config.model.modality != "video_audio":
    raise SystemExit("the probes need a video-audio model with compute_embeddings")
  config.data.root = args.records
  variables = state_lib.load_variables(config, args.checkpoint)
  splits = {}
  for name in ("train", "val"):
    files = state_lib.resolve_record_set(config, config.data[name])
    splits[name] = clip_features(config, variables, files)
  train, val = splits["train"], splits["val"]
  result = {
      "checkpoint": args.checkpoint, "config": args.config,
      "tracks": {name: {"real": int((s["label"] == 0).sum()), "fake": int((s["label"] == 1).sum()),
                        "clips_per_track": int(s["features"].shape[1])}
                 for name, s in splits.items()},
      "av_disagreement_auc": {name: av_disagreement(s) for name, s in splits.items()},
      "av_disagreement_centered_auc": {name: av_disagreement(s, center=True)
                                       for name, s in splits.items()},
      "logistic": logistic_probe(train, val),
      "head": {"raw": head_probe(config, train, val, args.steps, normalise=False),
               "layer_norm": head_probe(config, train, val, args.steps, normalise=True)},
  }
  if args.ground_truth:
    result["av_disagreement_val_by_kind"] = disagreement_by_kind(
        val, protocols.read_ground_truth(args.ground_truth, "kind"))
  text = json.dumps(result, indent=1)
  print(text)
  if args.json:
    pathlib.Path(os.path.dirname(args.json) or ".").mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.json).write_text(text + "\n")
  return result


if __name__ == "__main__":
  main()
