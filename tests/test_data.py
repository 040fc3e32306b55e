"""Trajectories: validation, pairs, batches, selection and atomic I/O."""

import os

import jax
import numpy as np
import pytest

from noether_ppl import Trajectories
from noether_ppl.data import batch_indices


def make_states(N=5, T1=4, M=4, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).normal(size=(N, T1, M)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_values_and_dtype(dtype):
    states = make_states(dtype=dtype)
    data = Trajectories(states=states, dt=0.25)
    assert data.states.dtype == dtype
    np.testing.assert_array_equal(data.states, states)
    assert (data.n_trajectories, data.n_steps, data.phase_dim, data.n_pairs) == (5, 3, 4, 15)
    assert data.dt == 0.25 and isinstance(data.dt, float)
    np.testing.assert_allclose(data.times, [0.0, 0.25, 0.5, 0.75])
    # an immutable private copy
    states[0, 0, 0] = 123.0
    assert data.states[0, 0, 0] != 123.0
    with pytest.raises(ValueError):
        data.states[0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        data.dt = 0.5
    assert repr(data) == ("Trajectories(n_trajectories=5, n_steps=3, phase_dim=4, dt=0.25, "
                          f"dtype={np.dtype(dtype)})")


def test_accepts_jax_arrays_and_single_trajectory():
    data = Trajectories(states=jax.numpy.asarray(make_states()), dt=np.float32(0.5))
    assert isinstance(data.states, np.ndarray) and data.dt == 0.5
    single = make_states(N=1)[0]
    one = Trajectories.from_array(single, dt=0.1)
    assert one.states.shape == (1, 4, 4)
    np.testing.assert_array_equal(one.states[0], single)
    with pytest.raises(ValueError, match="from_array"):
        Trajectories(states=single, dt=0.1)
    with pytest.raises(ValueError, match="shape"):
        Trajectories.from_array(np.zeros((2, 3, 4, 4)), dt=0.1)


@pytest.mark.parametrize(
    "states, dt, match",
    [
        (np.zeros((4, 4)), 0.1, "`states`"),
        (np.zeros((2, 3, 4, 4)), 0.1, "`states`"),
        (np.zeros((2, 3, 3)), 0.1, "even"),
        (np.zeros((2, 3, 0)), 0.1, "even"),
        (np.zeros((2, 1, 4)), 0.1, "at least 2 time points"),
        (np.zeros((0, 3, 4)), 0.1, "at least one trajectory"),
        (np.zeros((2, 3, 4), dtype=np.int64), 0.1, "floating"),
        (np.zeros((2, 3, 4), dtype=np.complex128), 0.1, "floating"),
        (np.zeros((2, 3, 4)), 0.0, "`dt`"),
        (np.zeros((2, 3, 4)), -0.1, "`dt`"),
        (np.zeros((2, 3, 4)), float("nan"), "`dt`"),
        (np.zeros((2, 3, 4)), float("inf"), "`dt`"),
        (np.zeros((2, 3, 4)), "0.1", "`dt`"),
        (np.zeros((2, 3, 4)), True, "`dt`"),
        (np.zeros((2, 3, 4)), np.array([0.1, 0.2]), "`dt`"),
    ],
)
def test_validation(states, dt, match):
    with pytest.raises(ValueError, match=match):
        Trajectories(states=states, dt=dt)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_trajectory(bad):
    states = make_states(N=6)
    states[4, 2, 1] = bad
    states[5, 0, 0] = bad
    with pytest.raises(ValueError, match="trajectory 4 at time index 2"):
        Trajectories(states=states, dt=0.1)


def test_pairs_match_manual_construction():
    states = make_states(N=3, T1=5, M=2)
    data = Trajectories(states=states, dt=0.1)
    x_t, x_next = data.pairs()
    assert x_t.shape == x_next.shape == (12, 2)
    traj, step = data.pair_index()
    row = 0
    for n in range(3):
        for t in range(4):
            np.testing.assert_array_equal(x_t[row], states[n, t])
            np.testing.assert_array_equal(x_next[row], states[n, t + 1])
            assert (traj[row], step[row]) == (n, t)
            row += 1


def test_batches_cover_every_trajectory_once_per_epoch():
    data = Trajectories(states=make_states(N=12), dt=0.1)
    key = jax.random.key(0)
    idx = np.asarray(data.batch_indices(key, 4))
    assert idx.shape == (3, 4)
    np.testing.assert_array_equal(np.sort(idx.ravel()), np.arange(12))
    np.testing.assert_array_equal(idx, np.asarray(data.batch_indices(key, 4)))  # same key
    other = np.asarray(data.batch_indices(jax.random.key(1), 4))
    assert not np.array_equal(idx, other)
    np.testing.assert_array_equal(np.sort(other.ravel()), np.arange(12))
    batches = list(data.batches(key, 4))
    assert len(batches) == 3 and all(b.n_trajectories == 4 and b.dt == 0.1 for b in batches)
    seen = np.concatenate([b.states for b in batches])
    np.testing.assert_array_equal(seen, data.states[idx.ravel()])
    # pure and jit-able with static sizes
    jitted = jax.jit(batch_indices, static_argnums=(1, 2))(key, 12, 4)
    np.testing.assert_array_equal(jitted, idx)


def test_batches_wrap_the_remainder():
    data = Trajectories(states=make_states(N=10), dt=0.1)
    idx = np.asarray(data.batch_indices(jax.random.key(3), 4))
    assert idx.shape == (3, 4)
    flat = idx.ravel()
    np.testing.assert_array_equal(np.sort(flat[:10]), np.arange(10))  # a full permutation
    np.testing.assert_array_equal(flat[10:], flat[:2])  # then wraps around to its start
    for bad in (0, 11, 2.0):
        with pytest.raises(ValueError, match="`batch_size`"):
            data.batch_indices(jax.random.key(0), bad)
    with pytest.raises(ValueError, match="`key`"):
        data.batch_indices(0, 2)


def test_subset_and_split():
    states = make_states(N=6)
    data = Trajectories(states=states, dt=0.1)
    np.testing.assert_array_equal(data.subset([4, 1]).states, states[[4, 1]])
    np.testing.assert_array_equal(data.subset(slice(1, 3)).states, states[1:3])
    mask = np.array([True, False, True, False, False, True])
    np.testing.assert_array_equal(data.subset(mask).states, states[mask])
    for bad in ([6], [0.5], [], mask[:3]):
        with pytest.raises(ValueError, match="`indices`"):
            data.subset(bad)
    first, rest = data.split(2)
    np.testing.assert_array_equal(first.states, states[:2])
    np.testing.assert_array_equal(rest.states, states[2:])
    a, b = data.split(4, key=jax.random.key(0))
    both = np.concatenate([a.states, b.states])
    assert a.n_trajectories == 4 and b.n_trajectories == 2
    np.testing.assert_array_equal(np.sort(both, axis=0), np.sort(states, axis=0))
    with pytest.raises(ValueError, match="`n_first`"):
        data.split(6)
    assert data.astype(np.float32).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_is_bit_exact(tmp_path, dtype):
    data = Trajectories(states=make_states(dtype=dtype), dt=0.1 + 1e-17)
    path = tmp_path / "sub" / "train.npz"
    data.save(path)
    loaded = Trajectories.load(path)
    assert loaded.states.dtype == dtype
    assert loaded.states.tobytes() == data.states.tobytes()
    assert loaded.dt == data.dt
    assert os.listdir(tmp_path / "sub") == ["train.npz"]  # no temporary files left behind
    Trajectories(states=make_states(N=2, dtype=dtype), dt=0.3).save(path)  # overwrite
    assert Trajectories.load(path).n_trajectories == 2


def test_load_rejects_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "data.npz"
    Trajectories(states=make_states(), dt=0.1).save(path)
    raw = path.read_bytes()
    for cut in (0, 10, len(raw) // 2, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="data.npz"):
            Trajectories.load(path)
    corrupt = bytearray(raw)
    corrupt[len(raw) // 3] ^= 0xFF  # inside the stored states
    path.write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match="data.npz"):
        Trajectories.load(path)
    missing = tmp_path / "missing_dt.npz"
    np.savez(missing, states=make_states())
    with pytest.raises(ValueError, match=r"missing_dt\.npz.*missing \['dt'\]"):
        Trajectories.load(missing)
    single = tmp_path / "one.npy"
    np.save(single, make_states())
    with pytest.raises(ValueError, match="one.npy"):
        Trajectories.load(single)
    invalid = tmp_path / "invalid.npz"
    np.savez(invalid, states=make_states(M=3), dt=0.1)
    with pytest.raises(ValueError, match="invalid.npz.*even"):
        Trajectories.load(invalid)
    with pytest.raises(FileNotFoundError):
        Trajectories.load(tmp_path / "nope.npz")
