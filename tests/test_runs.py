"""Run folders and checkpoints: save -> load_run round trip, resume equals an uninterrupted run,
corrupt / truncated / mismatched files are refused with the file named."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import Trajectories
from noether_ppl.models import ModelSpec, NoetherRazor
from noether_ppl.runs import (
    fit_in_folder,
    load_checkpoint,
    load_run,
    open_run,
    save_checkpoint,
)
from noether_ppl.runs import fitting as fitting_mod

STEPS, EVERY = 6, 3
FIT = {"lr": 1e-2, "lr_conserved": 1e-2, "batch_size": 3}


def _sho_data(n=5, T=3, dt=0.2, seed=0):
    """Exact harmonic-oscillator trajectories (q, p) = rotation of (q0, p0)."""
    x0 = np.random.default_rng(seed).normal(size=(n, 2))
    t = np.arange(T + 1) * dt
    c, s = np.cos(t)[None, :], np.sin(t)[None, :]
    q = x0[:, :1] * c + x0[:, 1:] * s
    p = -x0[:, :1] * s + x0[:, 1:] * c
    return Trajectories(np.stack([q, p], axis=-1), dt)


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _model():
    spec = ModelSpec(hidden=(8,), n_conserved=1, sym_samples=4, substeps=2)
    return NoetherRazor(spec, phase_dim=2)


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory):
    """An uninterrupted run of STEPS steps with a checkpoint every EVERY steps."""
    folder = str(tmp_path_factory.mktemp("runs") / "full")
    train = _sho_data()
    result = fit_in_folder(_model(), train, folder, key=jax.random.key(4), num_steps=STEPS,
                           checkpoint_every=EVERY, progress_bar=False,
                           tests={"test": _sho_data(seed=1)},
                           reference=np.eye(3)[None] * 0, meta={"label": "tiny"}, **FIT)
    return folder, result, train


def test_fit_in_folder_writes_the_run_layout(complete_run):
    folder, result, _ = complete_run
    for rel in ("run.json", "params.npz", "trace.npz", "checkpoint.npz", "data/train.npz",
                "data/test.npz", "reference.npz"):
        assert os.path.isfile(os.path.join(folder, rel)), rel
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]
    info = _read_json(os.path.join(folder, "run.json"))
    assert info["status"] == "complete" and info["steps"] == STEPS
    assert info["variant"] == "learned" and info["label"] == "tiny"
    assert info["fit"]["num_steps"] == STEPS and info["fit"]["lr"] == FIT["lr"]
    assert result.losses.shape == (STEPS,) and result.eta_norms.shape == (STEPS,)
    ck = load_checkpoint(os.path.join(folder, "checkpoint.npz"))
    assert ck.step == STEPS and np.array_equal(ck.losses, result.losses)


def test_save_then_load_run_round_trips_bit_exactly(complete_run):
    folder, result, train = complete_run
    loaded = load_run(folder)
    assert set(loaded.params) == set(result.params)
    for k, v in result.params.items():
        a, b = np.asarray(v), np.asarray(loaded.params[k])
        assert a.dtype == b.dtype and np.array_equal(a, b), k
    assert np.array_equal(loaded.losses, result.losses)
    assert np.array_equal(loaded.eta_norms, result.eta_norms)
    assert (loaded.dt, loaded.num_data, loaded.steps) == (result.dt, result.num_data, STEPS)
    assert loaded.model.spec == result.model.spec and loaded.variant == "learned"
    assert np.array_equal(loaded.generators(), result.generators())
    # Usable for prediction without refitting: the same predictions as the fitted result.
    x = jnp.asarray(train.states[:, 0], jnp.float32)
    key = jax.random.key(9)
    assert np.array_equal(np.asarray(loaded.predict(x, key=key)),
                          np.asarray(result.predict(x, key=key)))
    run = open_run(folder)
    assert np.array_equal(run.train.states, train.states) and set(run.tests) == {"test"}
    assert run.reference.shape == (1, 3, 3) and run.label == "tiny"


def test_killed_then_resumed_run_equals_the_uninterrupted_run(complete_run, tmp_path,
                                                               monkeypatch):
    full_folder, full, train = complete_run
    folder = str(tmp_path / "killed")
    real_save = fitting_mod.save_checkpoint

    def save_then_die(path, state, *, step, **kw):
        real_save(path, state, step=step, **kw)
        if step == EVERY:  # the process dies right after its first checkpoint
            raise KeyboardInterrupt

    monkeypatch.setattr(fitting_mod, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit_in_folder(_model(), train, folder, key=jax.random.key(4), num_steps=STEPS,
                      checkpoint_every=EVERY, progress_bar=False, **FIT)
    monkeypatch.setattr(fitting_mod, "save_checkpoint", real_save)
    assert _read_json(os.path.join(folder, "run.json"))["status"] == "running"
    assert load_checkpoint(os.path.join(folder, "checkpoint.npz")).step == EVERY
    with pytest.raises(ValueError, match="already holds a run"):
        fit_in_folder(_model(), train, folder, key=jax.random.key(4), num_steps=STEPS,
                      checkpoint_every=EVERY, progress_bar=False, **FIT)

    resumed = fit_in_folder(_model(), train, folder, key=jax.random.key(4), num_steps=STEPS,
                            checkpoint_every=EVERY, progress_bar=False, resume=True, **FIT)
    assert resumed.steps == STEPS and resumed.info["resumed_from_step"] == EVERY
    for k, v in full.params.items():
        np.testing.assert_allclose(np.asarray(resumed.params[k]), np.asarray(v), rtol=0,
                                   atol=1e-6, err_msg=k)
    np.testing.assert_allclose(resumed.losses, full.losses, rtol=1e-6)
    np.testing.assert_allclose(resumed.eta_norms, full.eta_norms, rtol=1e-6)
    # The complete run is then loaded as it is.
    again = fit_in_folder(_model(), train, folder, key=jax.random.key(4), num_steps=STEPS,
                          checkpoint_every=EVERY, progress_bar=False, resume=True, **FIT)
    assert np.array_equal(np.asarray(again.params["conserved_W"]),
                          np.asarray(resumed.params["conserved_W"]))


def test_a_mismatched_run_is_refused(complete_run, tmp_path):
    full_folder, _, train = complete_run
    folder = str(tmp_path / "copy")
    shutil.copytree(full_folder, folder)
    with pytest.raises(ValueError, match="run.json.*different configuration"):
        fit_in_folder(_model(), train, folder, key=jax.random.key(4), num_steps=STEPS,
                      checkpoint_every=EVERY, progress_bar=False, resume=True,
                      **{**FIT, "lr": 2e-2})
    path = os.path.join(folder, "checkpoint.npz")
    with pytest.raises(ValueError, match="checkpoint.npz.*different configuration"):
        load_checkpoint(path, fingerprint="0" * 64)
    with pytest.raises(ValueError, match="checkpoint.npz.*does not match this model"):
        load_checkpoint(path, template={"a": jnp.zeros(3)})


def _truncate(path, keep=0.5):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


def _flip_byte(path):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("rel", ["params.npz", "trace.npz", "data/train.npz", "run.json"])
@pytest.mark.parametrize("damage", [_truncate, _flip_byte])
def test_a_truncated_or_corrupt_run_file_is_refused_by_name(complete_run, tmp_path, rel,
                                                            damage):
    folder = str(tmp_path / "damaged")
    shutil.copytree(complete_run[0], folder)
    damage(os.path.join(folder, rel))
    with pytest.raises(ValueError) as info:
        open_run(folder)
    assert os.path.join(folder, rel) in str(info.value)


@pytest.mark.parametrize("damage", [_truncate, _flip_byte])
def test_a_truncated_or_corrupt_checkpoint_is_refused_by_name(complete_run, tmp_path, damage):
    path = str(tmp_path / "checkpoint.npz")
    shutil.copy(os.path.join(complete_run[0], "checkpoint.npz"), path)
    damage(path)
    with pytest.raises(ValueError, match="checkpoint.npz.*(truncated|corrupt)"):
        load_checkpoint(path)


def test_checkpoint_round_trip_of_a_state_with_a_prng_key(tmp_path):
    key = jax.random.split(jax.random.key(3))[1]
    state = {"opt": (jnp.int32(5), {"w": jnp.arange(6.0).reshape(2, 3)}), "key": key,
             "none": None}
    path = str(tmp_path / "ck.npz")
    save_checkpoint(path, state, step=2, losses=[1.0, 0.5], fingerprint="abc")
    template = jax.tree_util.tree_map(jnp.zeros_like, {k: v for k, v in state.items()
                                                       if k != "key"})
    template["key"] = jax.random.key(0)
    ck = load_checkpoint(path, template, fingerprint="abc")
    assert ck.step == 2 and np.array_equal(ck.losses, [1.0, 0.5]) and ck.eta_norms is None
    assert np.array_equal(jax.random.key_data(ck.state["key"]), jax.random.key_data(key))
    assert np.array_equal(ck.state["opt"][1]["w"], state["opt"][1]["w"])
    assert ck.state["opt"][0].dtype == jnp.int32
    bad = dict(template, opt=(jnp.int32(0), {"w": jnp.zeros((3, 2))}))
    with pytest.raises(ValueError, match="entry 2 has shape"):
        load_checkpoint(path, bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(str(tmp_path / "none.npz"))


def test_bad_arguments_are_refused_before_fitting(tmp_path):
    train = _sho_data()
    with pytest.raises(ValueError, match="num_steps"):
        fit_in_folder(_model(), train, str(tmp_path / "a"), key=jax.random.key(0),
                      num_steps=0)
    with pytest.raises(ValueError, match="checkpoint_every"):
        fit_in_folder(_model(), train, str(tmp_path / "a"), key=jax.random.key(0),
                      num_steps=3, checkpoint_every=0)
    with pytest.raises(ValueError, match="Unknown fit argument"):
        fit_in_folder(_model(), train, str(tmp_path / "a"), key=jax.random.key(0),
                      num_steps=3, learning_rate=1.0)
    assert not os.path.exists(tmp_path / "a")


def test_saving_a_new_fit_over_a_run_removes_what_was_derived_from_the_old_one(complete_run,
                                                                              tmp_path):
    from noether_ppl.runs import save_run

    folder = str(tmp_path / "over")
    shutil.copytree(complete_run[0], folder)
    with open(os.path.join(folder, "metrics.json"), "w") as f:
        f.write("{}")
    save_run(complete_run[1], folder, meta={"label": "again"})
    assert not os.path.exists(os.path.join(folder, "metrics.json"))
    assert not os.path.exists(os.path.join(folder, "checkpoint.npz"))
    info = _read_json(os.path.join(folder, "run.json"))
    assert info["data"] == {} and info["label"] == "again" and info["fingerprint"] is None
    assert sorted(info["files"]) == ["params.npz", "trace.npz"]
