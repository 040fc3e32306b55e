"""One definition per setting of a fit: every field of ``FitSettings`` is a key of an experiment
file's ``[inference]`` table (with the field's type), a ``--set inference.<name>=...``, a
keyword of ``inference.fit`` and of ``fit_in_folder``; and no other module of the package lists
the fields' names again."""

import ast
import dataclasses
import json
import math
import os
import pathlib

import jax
import pytest

import noether_ppl
from noether_ppl.experiments import load_experiment
from noether_ppl.experiments.settings import FIT_KEYS, INFERENCE_KEYS, InferenceSettings
from noether_ppl.inference import FitSettings, fit
from noether_ppl.inference.settings import fit_setting_names, setting_rules
from noether_ppl.runs import fit_in_folder

RULES = {rule.name: rule for rule in setting_rules()}
NAMES = list(RULES)

BASE = """
name = "settings"
seed = 0
variants = ["vanilla"]

[system]
name = "harmonic_oscillator"

[data.train]
n_trajectories = 3
n_steps = 3
dt = 0.2

[model]
hidden = [8]
n_conserved = 1
sym_samples = 4
substeps = 2

[inference]
"""


def _good(name):
    """A value of the field's type it takes (and what a TOML file writes for it)."""
    rule = RULES[name]
    if rule.base is str:
        return rule.choices[-1], f'"{rule.choices[-1]}"'
    if rule.base is int:
        return 2, "2"
    return 0.5, "0.5"


def _wrong_type(name):
    """A value of another type (TOML text)."""
    return "3" if RULES[name].base is str else '"x"'


def _bad(name):
    """A value of the right type out of range (``fit`` refuses it)."""
    rule = RULES[name]
    if rule.base is str:
        return "no-such-" + rule.choices[0]
    return -1 if rule.base is int else -1.0


def _write(tmp_path, extra):
    path = tmp_path / "exp.toml"
    lines = [] if "num_steps" in extra else ["num_steps = 2"]
    path.write_text(BASE + "\n".join(lines + [extra]) + "\n")
    return str(path)


def test_the_fields_are_the_fit_keys_of_the_experiment_files():
    assert list(FIT_KEYS) == NAMES == list(fit_setting_names())
    assert set(FIT_KEYS) <= set(INFERENCE_KEYS)
    inference_fields = [f.name for f in dataclasses.fields(InferenceSettings)]
    assert inference_fields[: len(NAMES)] == NAMES
    for f in dataclasses.fields(FitSettings):
        assert f.metadata["doc"], f"FitSettings.{f.name} has no doc"
        assert f.metadata["recorded"] in ("always", "when_set", "never")


@pytest.mark.parametrize("name", NAMES)
def test_the_loader_takes_every_field_with_its_type(tmp_path, name):
    value, text = _good(name)
    exp = load_experiment(_write(tmp_path, f"{name} = {text}"))
    assert getattr(exp.inference, name) == value
    if RULES[name].recorded != "never":
        assert exp.inference.fit_kwargs(3)[name] == value
    # and reloads from its resolved form (experiment.json)
    assert type(exp).from_dict(json.loads(json.dumps(exp.to_dict()))).inference == exp.inference


@pytest.mark.parametrize("name", NAMES)
def test_the_loader_refuses_a_wrong_type_naming_file_key_and_type(tmp_path, name):
    path = _write(tmp_path, f"{name} = {_wrong_type(name)}")
    with pytest.raises(ValueError) as info:
        load_experiment(path)
    msg = str(info.value)
    assert path in msg and f"inference.{name}" in msg and FIT_KEYS[name].expected in msg, msg


@pytest.mark.parametrize("name", NAMES)
def test_set_takes_every_field(tmp_path, name):
    value, text = _good(name)
    exp = load_experiment(_write(tmp_path, ""), overrides=[f"inference.{name}={text}"])
    assert getattr(exp.inference, name) == value
    with pytest.raises(ValueError, match=f"inference.{name} \\(from --set\\)"):
        load_experiment(_write(tmp_path, ""),
                        overrides=[f"inference.{name}={_wrong_type(name)}"])


@pytest.mark.parametrize("name", NAMES)
def test_fit_refuses_a_bad_value_of_every_field_naming_it(tiny_sho, tiny_razor, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        fit(tiny_razor, tiny_sho, key=jax.random.key(0), progress_bar=False,
            **{name: _bad(name)})
    with pytest.raises(ValueError, match=f"`{name}`"):
        FitSettings(**{name: _bad(name)})


def _all_good(**extra):
    return {**{name: _good(name)[0] for name in NAMES}, **extra}


def test_fit_and_fit_in_folder_take_every_field(tiny_sho, tiny_razor, tmp_path):
    kwargs = _all_good()
    a = fit(tiny_razor, tiny_sho, key=jax.random.key(0), progress_bar=False, **kwargs)
    b = fit(tiny_razor, tiny_sho, key=jax.random.key(0), progress_bar=False,
            settings=FitSettings(**kwargs))
    assert a.steps == b.steps == kwargs["num_steps"]
    assert all(float(abs(a.params[k] - b.params[k]).max()) == 0 for k in a.params)
    run = fit_in_folder(tiny_razor, tiny_sho, tmp_path / "run", key=jax.random.key(0),
                        progress_bar=False, **kwargs)
    assert run.steps == kwargs["num_steps"]
    with open(tmp_path / "run" / "run.json") as f:
        recorded = json.load(f)["fit"]
    for name, rule in RULES.items():
        assert (name in recorded) == (rule.recorded != "never"), name


def test_fit_takes_settings_or_keywords_not_both(tiny_sho, tiny_razor):
    with pytest.raises(ValueError, match="settings"):
        fit(tiny_razor, tiny_sho, key=jax.random.key(0), settings=FitSettings(), lr=1e-2)
    with pytest.raises(ValueError, match="FitSettings"):
        fit(tiny_razor, tiny_sho, key=jax.random.key(0), settings={"lr": 1e-2})
    with pytest.raises(TypeError, match="lrr"):
        fit(tiny_razor, tiny_sho, key=jax.random.key(0), lrr=1e-2)


def test_fit_in_folder_takes_the_fields_and_nothing_else(tiny_sho, tiny_razor, tmp_path):
    with pytest.raises(ValueError, match=r"Unknown fit argument\(s\) \['lrr'\]") as info:
        fit_in_folder(tiny_razor, tiny_sho, tmp_path / "run", key=jax.random.key(0),
                      num_steps=2, lrr=1e-2)
    for name in NAMES:
        if name not in ("num_steps", "chunk_size"):  # parameters of fit_in_folder's own
            assert repr(name) in str(info.value)
    # a bad value is refused before anything is written
    with pytest.raises(ValueError, match="`lr`"):
        fit_in_folder(tiny_razor, tiny_sho, tmp_path / "bad", key=jax.random.key(0),
                      num_steps=2, lr=-1.0)
    assert not os.path.exists(tmp_path / "bad")


def test_lr_conserved_zero_is_taken_by_fit_and_by_set(tiny_sho, tiny_razor, tmp_path):
    exp = load_experiment(_write(tmp_path, ""), overrides=["inference.lr_conserved=0"])
    assert exp.inference.lr_conserved == 0
    FitSettings(lr_conserved=0)
    r = fit(tiny_razor, tiny_sho, key=jax.random.key(0), num_steps=2, lr_conserved=0,
            progress_bar=False)
    assert r.steps == 2


def test_runaway_factor_inf_agrees(tmp_path):
    exp = load_experiment(_write(tmp_path, ""), overrides=["inference.runaway_factor=inf"])
    assert math.isinf(exp.inference.runaway_factor)
    assert math.isinf(FitSettings(runaway_factor=math.inf).runaway_factor)


# ----------------------------------------------------------------------------- one place

PACKAGE = pathlib.Path(noether_ppl.__file__).parent
DEFINITION = PACKAGE / "inference" / "settings.py"
READERS = {"runs/schema.py": {"num_particles", "num_steps"}}
"""Not lists of the settings but the keys of ``run.json``'s ``"fit"`` that readers of a run
use (``load_run`` rebuilds the ELBO with ``num_particles``), checked by the run file's schema;
a new setting does not touch them."""


def _listings(tree):
    """``(line, names)`` of every tuple, list, set or dict literal (its keys) with two or more
    string constants that are names of FitSettings fields."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        names = [e.value for e in items
                 if isinstance(e, ast.Constant) and e.value in RULES]
        if len(names) >= 2:
            yield node.lineno, names


def test_no_other_module_lists_the_fields():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == DEFINITION:
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        for line, names in _listings(ast.parse(path.read_text(encoding="utf-8"))):
            if not set(names) <= READERS.get(rel, set()):
                found[f"{rel}:{line}"] = names
    assert not found, (f"names of FitSettings fields listed outside inference/settings.py "
                       f"(read them from dataclasses.fields(FitSettings)): {found}")
