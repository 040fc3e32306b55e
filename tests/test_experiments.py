"""Experiment files: every packaged file validates and holds the paper's settings; bad files are
refused with the key and the file named; overrides; variants by name."""

import math

import jax
import numpy as np
import pytest

from noether_ppl.experiments import (
    Experiment,
    apply_overrides,
    load_experiment,
    packaged_experiments,
)

PAPER = ("sho", "oscillators3", "nbody2d3")
PACKAGED = PAPER + tuple(f"{n}-cpu" for n in PAPER)
# the suite's systems that an experiment file can name (all but u2-noncanonical), packaged at
# the discovery benchmark's settings (tests/test_discovery_benchmark.py checks them)
SUITE_PACKAGED = ("anisotropic-1-2", "anisotropic-1-sqrt2", "anisotropic-1-1-2", "isotropic-3d",
                  "magnetic", "central-quartic", "central-softened-kepler", "two-body-2d",
                  "henon-heiles", "henon-heiles-escape", "quartic-1d")


def test_the_six_experiments_are_packaged():
    assert set(PACKAGED) <= set(packaged_experiments())
    assert set(packaged_experiments()) == set(PACKAGED + SUITE_PACKAGED)


@pytest.mark.parametrize("name", PACKAGED + SUITE_PACKAGED)
def test_every_packaged_experiment_parses_and_validates(name):
    exp = load_experiment(name)
    assert exp.name == name and "(packaged)" in exp.source
    system = exp.make_system()
    train = exp.data["train"]
    assert exp.inference.steps_for(train.n_trajectories) >= 1
    for v in exp.variants:
        variant = exp.variant(v)
        spec = exp.spec_for(variant)
        assert spec.n_conserved == (0 if variant.kind == "vanilla" else exp.model.n_conserved)
    # The learned model must be able to span the ground-truth algebra.
    assert exp.model.n_conserved >= system.generators().shape[0]
    # The resolved form reloads to the same experiment.
    again = Experiment.from_dict(exp.to_dict())
    assert again.to_dict() == exp.to_dict()


def test_paper_scale_files_hold_the_settings_of_app_c():
    """DESIGN.md "Paper experiments" / App. C: data sizes, MLP, S, M, Euler sub-steps,
    optimiser, epochs -> steps, batch sizes, K."""
    sho = load_experiment("sho")
    assert sho.system["name"] == "harmonic_oscillator"
    tr = sho.data["train"]
    assert (tr.n_trajectories, tr.n_steps + 1, tr.dt) == (7, 4, 0.2)
    te = sho.data["test"]
    assert (te.n_trajectories, te.n_steps, te.dt) == (100, 20, 0.2)
    m = sho.model
    assert (m.hidden, m.activation, m.elu_alpha) == ((200, 200), "elu", 2.0)
    assert (m.sym_samples, m.measure, m.substeps, m.n_conserved) == (200, "uniform", 20, 1)
    assert math.isclose(m.measure_scale, math.pi) and m.noise_variance == 1e-3
    assert sho.inference.batch_size is None  # full batch: a step is an epoch
    assert sho.inference.steps_for(7) == 2000
    assert (sho.inference.lr, sho.inference.schedule) == (1e-3, "cosine")
    assert sho.variants == ("vanilla", "learned", "so2")

    osc = load_experiment("oscillators3")
    assert osc.system == {"name": "coupled_oscillators", "n": 3}
    tr = osc.data["train"]
    assert (tr.n_trajectories, tr.n_steps + 1, tr.dt) == (200, 50, 0.3)
    m = osc.model
    assert (m.hidden, m.elu_alpha, m.sym_samples, m.substeps) == ((200,) * 3, 1.0, 100, 20)
    assert (m.n_conserved, m.measure) == (30, "ball")
    inf = osc.inference
    assert (inf.batch_size, inf.num_particles, inf.lr) == (20, 2, 1e-3)
    assert inf.steps_for(200) == 2000 * 10  # 2000 epochs of 10 batches

    nb = load_experiment("nbody2d3")
    assert nb.system["name"] == "nbody" and (nb.system["n_bodies"], nb.system["dim"]) == (3, 2)
    tr = nb.data["train"]
    assert (tr.n_trajectories, tr.n_steps + 1, tr.dt, tr.shift_scale) == (200, 50, 0.3, 3.0)
    assert set(nb.data) == {"train", "test", "moved", "wider"}
    assert nb.data["wider"].position_scale == 3.0 and nb.data["moved"].position_shift
    m = nb.model
    assert (m.hidden, m.sym_samples, m.substeps, m.n_conserved) == ((250,) * 4, 100, 20, 10)
    assert (nb.inference.batch_size, nb.inference.num_particles) == (20, 2)
    assert nb.inference.steps_for(200) == 20000
    assert nb.analysis.min_parallelness == 0.95 and nb.variants[-1] == "se2"


@pytest.mark.parametrize("name", PAPER)
def test_cpu_twins_keep_the_system_test_sets_and_variants(name):
    paper, cpu = load_experiment(name), load_experiment(f"{name}-cpu")
    assert cpu.system == paper.system and cpu.variants == paper.variants
    assert set(cpu.data) == set(paper.data)
    for split in paper.data:
        if split != "train":
            assert cpu.data[split] == paper.data[split]
    assert cpu.model.measure == paper.model.measure
    assert cpu.analysis.min_parallelness == paper.analysis.min_parallelness


GOOD = """
name = "mine"
seed = 3
variants = ["vanilla", "learned"]
[system]
name = "coupled_oscillators"
n = 2
[data.train]
n_trajectories = 4
n_steps = 3
dt = 0.3
[model]
hidden = [8]
n_conserved = 4
[inference]
epochs = 5
batch_size = 3
"""


def _write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_any_path_works_and_epochs_become_steps(tmp_path):
    path = _write(tmp_path, GOOD)
    exp = load_experiment(path)
    assert exp.source == path and exp.seed == 3
    assert exp.model.hidden == (8,) and exp.model.n_conserved == 4
    assert exp.inference.steps_for(4) == 5 * 2  # ceil(4 / 3) = 2 batches per epoch
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_experiment(str(tmp_path / "nope.toml"))
    with pytest.raises(ValueError, match="Unknown experiment 'nope'"):
        load_experiment("nope")


@pytest.mark.parametrize(
    "edit,key",
    [
        (("[inference]", "[inference]\nlrr = 1.0"), "inference.lrr"),
        (("seed = 3", "seed = 3\ncolour = 1"), "colour"),
        (("[model]", "[model]\nwidth = 3"), "model.width"),
        (("n = 2", "n = 2\nmass = 1.0"), "system.mass"),
        (("dt = 0.3", "dt = 0.3\nsteps = 2"), "data.train.steps"),
        (("hidden = [8]", 'hidden = "8"'), "model.hidden"),
        (("epochs = 5", "epochs = 1.5"), "inference.epochs"),
        (("seed = 3", 'seed = "3"'), "seed"),
        (("dt = 0.3", "dt = -0.3"), "data.train.dt"),
        (('variants = ["vanilla", "learned"]', 'variants = ["vanilla", "fancy"]'), "variants"),
        (('variants = ["vanilla", "learned"]', 'variants = ["so2"]'), "variants"),
        (('variants = ["vanilla", "learned"]', 'variants = ["u(3)"]'), "variants"),
        (('name = "coupled_oscillators"', 'name = "pendulum"'), "system.name"),
        (("[inference]", "[inference]\nnum_steps = 3"), "inference"),
        (("batch_size = 3", "batch_size = 9"), "inference.batch_size"),
        (("[inference]", "[inference]\ninit_scale = 0.0"), "inference.init_scale"),
        (("[inference]", '[inference]\nlr_offdiag = "small"'), "inference.lr_offdiag"),
        (("[inference]", '[inference]\nrefit = "yes"'), "inference.refit"),
        (("[inference]", "[inference]\nrefit_lr_offdiag = 0"), "inference.refit_lr_offdiag"),
        (("[inference]", "[inference]\nrunaway_factor = 0"), "inference.runaway_factor"),
        (("[inference]", "[inference]\nrunaway_factor = nan"), "inference.runaway_factor"),
        # η's rate in refits that learn it, without refits that learn it
        (("[inference]", "[inference]\nselect_refit_lr_conserved = 1e-4"),
         "inference.select_refit_lr_conserved"),
        (("[data.train]", "[data.other]"), "data.train"),
    ],
)
def test_bad_files_name_the_key_and_the_file(tmp_path, edit, key):
    old, new = edit
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ValueError) as info:
        load_experiment(path)
    msg = str(info.value)
    assert path in msg and key in msg and "\n" not in msg


def test_model_values_are_checked_by_modelspec(tmp_path):
    path = _write(tmp_path, GOOD.replace("[model]", '[model]\nmeasure = "cube"'))
    with pytest.raises(ValueError, match=r"exp.toml: \[model\]: Unknown `measure` 'cube'"):
        load_experiment(path)


def test_invalid_toml_names_the_file(tmp_path):
    path = _write(tmp_path, GOOD + "\n[model\n")
    with pytest.raises(ValueError, match="exp.toml: invalid TOML"):
        load_experiment(path)


def test_overrides_are_typed_validated_and_never_ignored(tmp_path):
    path = _write(tmp_path, GOOD)
    exp = load_experiment(path, ["model.hidden=[16, 16]", "model.activation=tanh",
                                 "inference.num_steps=7", "analysis.figures=false",
                                 "data.train.dt=0.25", "seed=9", "inference.init_scale=0.03",
                                 "inference.lr_offdiag=3e-4", "inference.runaway_factor=inf",
                                 "inference.lr_logdiag=9e-3"])
    assert exp.model.hidden == (16, 16) and exp.model.activation == "tanh"
    # num_steps replaces the file's epochs (they are alternatives)
    assert exp.inference.num_steps == 7 and exp.inference.epochs is None
    assert exp.analysis.figures is False and exp.data["train"].dt == 0.25 and exp.seed == 9
    assert exp.inference.init_scale == 0.03 and load_experiment(path).inference.init_scale is None
    assert exp.inference.lr_offdiag == 3e-4 and load_experiment(path).inference.lr_offdiag is None
    assert exp.inference.runaway_factor == float("inf")
    assert load_experiment(path).inference.runaway_factor is None
    assert exp.inference.lr_logdiag == 9e-3 and exp.inference.fit_kwargs(7)["lr_logdiag"] == 9e-3
    assert "lr_logdiag" not in load_experiment(path).inference.fit_kwargs(7)
    assert exp.overrides[0] == "model.hidden=[16, 16]"
    with pytest.raises(ValueError, match=r"inference\.num_step \(from --set\): unknown key"):
        load_experiment(path, ["inference.num_step=7"])
    with pytest.raises(ValueError, match=r"model\.sym_samples \(from --set\): expected a "
                                         r"positive integer"):
        load_experiment(path, ["model.sym_samples=2.5"])
    with pytest.raises(ValueError, match="expected key=value"):
        load_experiment(path, ["inference.num_steps"])
    with pytest.raises(ValueError, match="is not a table"):
        load_experiment(path, ["seed.x=1"])
    raw, keys = apply_overrides({"inference": {"num_steps": 3}}, ["inference.epochs=2"])
    assert raw == {"inference": {"epochs": 2}} and keys == {"inference.epochs"}


def test_replace_applies_overrides_to_a_loaded_experiment():
    exp = load_experiment("sho-cpu").replace(["inference.num_steps=10"])
    assert exp.inference.num_steps == 10 and exp.overrides == ("inference.num_steps=10",)
    assert load_experiment("sho-cpu").inference.num_steps == 2000


def test_variants_by_name_map_to_the_systems_generators():
    osc = load_experiment("oscillators3-cpu")
    u = osc.variant("u(n)")
    assert (u.kind, u.slug, u.label) == ("fixed", "u3", "HNN + fixed U(3)")
    assert osc.variant("u(3)").slug == "u3"
    with pytest.raises(ValueError, match="does not match system.n = 3"):
        osc.variant("u(4)")
    with pytest.raises(ValueError, match="'so2' is the symmetry of the harmonic_oscillator"):
        osc.variant("so2")
    assert osc.variant("oracle").kind == "fixed"
    nb = load_experiment("nbody2d3-cpu")
    se2 = nb.variant("se2")
    assert se2.label == "HNN + fixed SE(2)" and se2.generators == ("T_x", "T_y", "R^ABS_xy")
    assert nb.make_system().generators(se2.generators).shape == (3, 13, 13)
    assert nb.variant("oracle").generators is None  # all seven of App. B.3
    # Without a simulated system (the user's data) only a reference can fix a symmetry.
    with pytest.raises(ValueError, match="ground truth of a simulated system"):
        nb.variant("se2", system=False)
    with pytest.raises(ValueError, match="needs ground-truth generators"):
        nb.variant("oracle", system=False)
    assert nb.variant("oracle", system=False, has_reference=True).label == \
        "HNN + fixed reference"
    assert nb.spec_for(nb.variant("vanilla")).n_conserved == 0


def test_keys_derive_from_the_seed_only():
    a, b = load_experiment("sho-cpu"), load_experiment("sho-cpu", ["seed=1"])
    da, fa, ea = a.keys()
    db, fb, _ = b.keys()
    data = lambda k: np.asarray(jax.random.key_data(k))
    assert np.array_equal(data(da("train")), data(a.keys()[0]("train")))
    assert not np.array_equal(data(da("train")), data(da("test")))
    assert not np.array_equal(data(fa), data(fb))
    assert not np.array_equal(data(fa), data(ea))


def test_the_typed_system_schema_names_the_parameters_build_system_takes():
    from noether_ppl.experiments.settings import SYSTEMS
    from noether_ppl.systems import SYSTEM_PARAMETERS

    assert {name: tuple(params) for name, params in SYSTEMS.items()} == SYSTEM_PARAMETERS


SUITE_TABLES = [
    ('name = "anisotropic_oscillator"\nfrequencies = [1, 1, 2]', "anisotropic-1-1-2"),
    ('name = "magnetic_particle"', "magnetic"),
    ('name = "central_force"\npotential = "quartic"', "central-quartic"),
    ('name = "central_force"\npotential = "softened-kepler"', "central-softened-kepler"),
    ('name = "henon_heiles"\nenergy_fraction = 0.99', "henon-heiles-escape"),
    ('name = "henon_heiles"', "henon-heiles"),
    ('name = "quartic_oscillator"', "quartic-1d"),
]


@pytest.mark.parametrize("table,suite_name", SUITE_TABLES)
def test_an_experiment_file_names_the_suites_systems(tmp_path, table, suite_name):
    from noether_ppl.systems import DIMENSIONS, SUITE

    text = GOOD.replace('name = "coupled_oscillators"\nn = 2', table, 1)
    exp = load_experiment(_write(tmp_path, text))
    system, suite = exp.make_system(), SUITE[suite_name]()
    assert repr(system) == repr(suite) and system.name == suite.name
    # the same Hamiltonian, ground truth and data settings as the suite's system
    np.testing.assert_array_equal(system.generators(), suite.generators())
    assert system.generators().shape[0] == DIMENSIONS[suite_name]
    x = jax.random.normal(jax.random.key(0), (5, system.phase_dim))
    np.testing.assert_array_equal(jax.vmap(system.hamiltonian)(x),
                                  jax.vmap(suite.hamiltonian)(x))
    assert system.split_settings("train") == suite.split_settings("train")
    # the resolved form (a run's experiment.json) reloads to the same system
    again = Experiment.from_dict(exp.to_dict())
    assert again.to_dict() == exp.to_dict() and repr(again.make_system()) == repr(suite)


@pytest.mark.parametrize(
    "table,key,expected",
    [
        ('name = "anisotropic_oscillator"\nfrequencies = [1, -2]', "system.frequencies",
         "positive"),
        ('name = "anisotropic_oscillator"\nfrequencies = 2.0', "system.frequencies", "array"),
        ('name = "magnetic_particle"\nfield = 0', "system.field", "non-zero"),
        ('name = "central_force"\npotential = "cubic"', "system.potential", "quartic"),
        ('name = "central_force"\nfield = 1.0', "system.field", "potential"),
        ('name = "henon_heiles"\nenergy_fraction = 1.5', "system.energy_fraction", "(0, 1)"),
        ('name = "quartic_oscillator"\nn = 2', "system.n", "unknown key"),
        # a value the type allows and the system refuses is named when the file is read
        ('name = "nbody"\nn_bodies = 3\nmasses = [1.0, 1.0]', "system", "shape (3,)"),
    ],
)
def test_bad_suite_system_parameters_name_the_key(tmp_path, table, key, expected):
    path = _write(tmp_path, GOOD.replace('name = "coupled_oscillators"\nn = 2', table, 1))
    with pytest.raises(ValueError) as info:
        load_experiment(path)
    msg = str(info.value)
    assert path in msg and key in msg and expected in msg


def test_oracle_of_a_system_without_quadratic_conserved_quantities_is_refused(tmp_path):
    text = GOOD.replace('name = "coupled_oscillators"\nn = 2', 'name = "quartic_oscillator"', 1)
    text = text.replace('variants = ["vanilla", "learned"]', 'variants = ["vanilla", "oracle"]')
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=r"variants: variant 'oracle' .*'quartic_oscillator' "
                                         r"has none") as info:
        load_experiment(path)
    assert path in str(info.value)
