"""fakeout_jax.state.eval_step's per-track scores: the classifier's mean and the video-audio
agreement of the embeddings, plain (Fig. 4) and centred on the track's mean."""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

from fakeout_jax import state


class Embedder(nn.Module):
  """Stands in for FakeOut: clip pixels -> its video embedding, audio -> its audio embedding."""
  modality: str = "video_audio"

  @nn.compact
  def __call__(self, video, audio, train):
    b = video.shape[0]
    return {"logits": jnp.zeros((b, 2)),
            "vid_embd": {"toaud": video.reshape(b, -1)[:, :4]},
            "aud_embd": {"tovid": audio.reshape(b, -1)[:, :4]}}


def test_centred_agreement_scores_timing_not_a_shared_offset():
  rng = np.random.default_rng(0)
  tracks, clips = 3, 5
  motion = rng.normal(size=(tracks, clips, 4))
  offset = 30 * rng.normal(size=(tracks, 1, 4))
  # Track 0 in sync, track 1 out of sync (opposite), track 2 unrelated; video carries a large
  # per-track offset that swamps the plain cosine.
  audio = np.stack([motion[0], -motion[1], rng.normal(size=(clips, 4))])
  video = motion + offset   # forward() divides pixels by 255: cosines do not see the scale
  batch = {"video": jnp.asarray(video.reshape(tracks, clips, 4, 1, 1, 1), jnp.float32),
           "audio": jnp.asarray(audio.reshape(tracks, clips, 4, 1, 1), jnp.float32)}
  model = Embedder()
  train_state = state.TrainState.create(apply_fn=model.apply, params={}, batch_stats={},
                                        tx=optax.sgd(0.0))
  out = state.eval_step(train_state, batch, model)

  def cosine(v, a):
    return (v * a).sum(-1) / (np.linalg.norm(v, axis=-1) * np.linalg.norm(a, axis=-1))
  v, a = video.reshape(tracks, clips, 4), audio
  centred = cosine(v - v.mean(1, keepdims=True), a - a.mean(1, keepdims=True)).mean(1)
  np.testing.assert_allclose(out["av_cosine"], cosine(v, a).mean(1), atol=1e-5)
  np.testing.assert_allclose(out["av_cosine_centered"], centred, atol=1e-5)
  assert out["av_cosine_centered"][0] > 0.5 > -0.5 > out["av_cosine_centered"][1]
  assert np.ptp(out["av_cosine"]) < 0.5   # the plain score hardly tells them apart
